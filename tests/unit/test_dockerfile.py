"""The container image, checked without a Docker engine.

The Dockerfile is parsed (stages, base images, user, entrypoint, what is
copied), ``.dockerignore`` is evaluated on the repository's files to find the
build context, and the wheel the builder stage makes is built from exactly that
context and inspected.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kubehelpers import IMAGE_PACKAGES, ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PACKAGES = IMAGE_PACKAGES


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) pairs: continuations joined, comments dropped."""
    result: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments may sit inside a continued instruction too
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.strip().partition(" ")
        result.append((keyword.upper(), args.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return result


def substitute(text: str, args: dict[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), text
    )


def stages(text: str) -> list[Stage]:
    global_args: dict[str, str] = {}
    found: list[Stage] = []
    for keyword, args in instructions(text):
        if keyword == "ARG" and not found:
            name, _, default = args.partition("=")
            global_args[name.strip()] = default.strip().strip('"')
        elif keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            image = substitute(words[0], global_args)
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            found.append(Stage(image=image, name=name))
        elif found:
            found[-1].instructions.append((keyword, args))
    return found


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for word in shlex.split(args):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def copy_sources(args: str) -> tuple[str | None, list[str]]:
    words = shlex.split(args)
    source_stage = None
    plain = []
    for word in words:
        if word.startswith("--from="):
            source_stage = word.removeprefix("--from=")
        elif not word.startswith("--"):
            plain.append(word)
    return source_stage, plain[:-1]


# .dockerignore -------------------------------------------------------------------
def ignore_patterns() -> list[tuple[bool, str]]:
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        patterns.append((negated, pattern))
    return patterns


def excluded(path: str, patterns: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last pattern that matches the path or a parent of it wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negated, pattern in patterns:
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            result = not negated
    return result


def repository_files() -> list[str]:
    """Every file docker would see in the context, except what git itself ignores
    (.venv, .cluster, caches: those are checked by name in a test below)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return [line for line in out.stdout.splitlines() if (ROOT / line).is_file()]


def build_context() -> list[str]:
    patterns = ignore_patterns()
    return sorted(p for p in repository_files() if not excluded(p, patterns))


# The Dockerfile -------------------------------------------------------------------
@pytest.fixture(scope="module")
def parsed() -> list[Stage]:
    return stages(DOCKERFILE.read_text())


def test_multi_stage_with_a_builder(parsed: list[Stage]) -> None:
    assert len(parsed) >= 2
    assert all(s.name for s in parsed[:-1]), "name every stage but the last"
    final = parsed[-1]
    assert final.all("RUN"), "expected the final stage to prepare its user"


def test_base_images_are_pinned(parsed: list[Stage]) -> None:
    names = {s.name for s in parsed if s.name}
    for stage in parsed:
        image = stage.image
        if image in names:
            continue
        assert "$" not in image, f"unresolved build argument in {image}"
        if "@sha256:" in image:
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and tag and "/" not in tag, f"{image} has no tag"
        assert tag != "latest"
        assert re.match(r"\d+\.\d+\.\d+-", tag), f"{image}: pin an exact version, not {tag}"


def test_final_stage_runs_as_numeric_non_root_user(parsed: list[Stage]) -> None:
    users = parsed[-1].all("USER")
    assert users, "the final stage must set USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) != 0, f"USER {users[-1]} must be a numeric non-root uid"
    assert not group or (group.isdigit() and int(group) != 0)


def test_entrypoint_is_python_module(parsed: list[Stage]) -> None:
    entrypoints = parsed[-1].all("ENTRYPOINT")
    assert entrypoints
    assert json.loads(entrypoints[-1]) == ["python", "-m", "session_operator"]
    assert not parsed[-1].all("CMD")


def test_final_stage_needs_no_writes(parsed: list[Stage]) -> None:
    env = env_of(parsed[-1])
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_final_stage_copies_only_the_built_venv(parsed: list[Stage]) -> None:
    names = {s.name for s in parsed if s.name}
    final = parsed[-1]
    assert not final.all("ADD")
    copies = final.all("COPY")
    assert copies
    for args in copies:
        source_stage, sources = copy_sources(args)
        assert source_stage in names, f"final stage copies from the build context: {args}"
        assert sources == ["/opt/venv"], args
    # No stage copies tests, or the whole context.
    for stage in parsed:
        for args in stage.all("COPY") + stage.all("ADD"):
            _, sources = copy_sources(args)
            for source in sources:
                assert "test" not in source and source not in (".", "./"), args


def test_builder_copies_only_what_dockerignore_lets_through(parsed: list[Stage]) -> None:
    patterns = ignore_patterns()
    for stage in parsed[:-1]:
        for args in stage.all("COPY"):
            source_stage, sources = copy_sources(args)
            if source_stage:
                continue
            for source in sources:
                path = (ROOT / source).resolve()
                assert path.exists(), source
                probe = path / "__init__.py" if path.is_dir() else path
                assert not excluded(str(probe.relative_to(ROOT)), patterns), source


# .dockerignore ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("pyproject.toml", True),
        ("operator/session_operator/__main__.py", True),
        ("operator/session_operator/reconcile.py", True),
        ("operator/rdev_api/models.py", True),
        ("operator/kubectl_session/cli.py", False),
        ("operator/session_operator/__pycache__/kube.cpython-311.pyc", False),
        ("operator/rdev_session_operator.egg-info/PKG-INFO", False),
        ("tests/conftest.py", False),
        ("tests/unit/test_dockerfile.py", False),
        (".venv/bin/python", False),
        (".cluster/kubeconfig", False),
        (".git/config", False),
        ("manifests/deployment.yaml", False),
        ("Dockerfile", False),
    ],
)
def test_dockerignore(path: str, sent: bool) -> None:
    assert excluded(path, ignore_patterns()) is not sent


def package_files() -> list[Path]:
    return [p for package in PACKAGES for p in (ROOT / "operator" / package).rglob("*.py")]


def test_build_context_is_the_package_only() -> None:
    context = build_context()
    assert "pyproject.toml" in context
    modules = {f"operator/{p.relative_to(ROOT / 'operator')}" for p in package_files()}
    assert modules <= set(context)
    for path in context:
        assert path == "pyproject.toml" or path.startswith(
            tuple(f"operator/{package}/" for package in PACKAGES)
        ), path
        assert "test" not in Path(path).name, path


# The wheel the builder stage installs --------------------------------------------------
@pytest.mark.build
@pytest.mark.timeout(180)
def test_wheel_has_the_package_and_no_tests(tmp_path: Path) -> None:
    """``pip wheel`` on a copy of the build context, as the builder stage runs it."""
    context = tmp_path / "context"
    for rel in build_context():
        target = context / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    out = tmp_path / "wheels"
    pip = ROOT / ".venv" / "bin" / "pip"
    built = subprocess.run(
        [str(pip), "wheel", "--no-deps", "--quiet", "--disable-pip-version-check", "-w", out, "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    wheels = list(out.glob("*.whl"))
    assert [w.name for w in wheels] == ["rdev_session_operator-0.1.0-py3-none-any.whl"]
    with zipfile.ZipFile(wheels[0]) as whl:
        names = whl.namelist()
        whl.extractall(tmp_path / "site")
        metadata = whl.read("rdev_session_operator-0.1.0.dist-info/METADATA").decode()
        top_level = whl.read("rdev_session_operator-0.1.0.dist-info/top_level.txt").decode()
        scripts = whl.read("rdev_session_operator-0.1.0.dist-info/entry_points.txt").decode()
    modules = {str(p.relative_to(ROOT / "operator")) for p in package_files()}
    assert modules <= set(names)
    assert top_level.split() == list(PACKAGES)
    for name in names:
        assert name.startswith(
            (*(f"{package}/" for package in PACKAGES), "rdev_session_operator-0.1.0.dist-info/")
        )
        assert not re.search(r"(^|/)(tests?|conftest)(/|\.py$)|/test_", name), name
    assert "Requires-Dist: kopf" in metadata
    assert "kubectl-session = kubectl_session.cli:main" in scripts.splitlines()
    assert "git-remote-rdev = kubectl_session.remote:main" in scripts.splitlines()
    # The official client is the plugin's alone: only its extra asks for it.
    kubernetes = [
        line for line in metadata.splitlines() if line.startswith("Requires-Dist: kubernetes")
    ]
    assert all("kubernetes-asyncio" in line or "extra ==" in line for line in kubernetes), (
        kubernetes
    )

    # The entry point runs from the wheel's files (a bad setting stops it
    # before it touches a cluster).
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "RDEV_WORKERS": "0"}
    env.pop("KUBECONFIG", None)
    ran = subprocess.run(
        [sys.executable, "-c", "import session_operator; print(session_operator.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.stdout.strip().startswith(str(tmp_path / "site")), ran.stdout + ran.stderr
    started = subprocess.run(
        [sys.executable, "-m", "session_operator"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 2, started.stderr
    assert "RDEV_WORKERS" in started.stderr
