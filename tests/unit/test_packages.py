"""The three packages and who may import whom, proven in fresh interpreters.

``rdev_api`` is the shared API; ``session_operator`` (the operator) and
``kubectl_session`` (the plugin) import it and never each other. Each side's
forbidden imports are blocked outright, and every one of its modules is
imported: a single import of a forbidden package anywhere fails the test, and
the operator is shown to run without the official ``kubernetes`` client at all
(its image does not install it).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import importlib, pkgutil, sys

package, blocked = sys.argv[1], tuple(sys.argv[2].split(","))


class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{package} imported {name}")
        return None


sys.meta_path.insert(0, Block())
root = importlib.import_module(package)
for module in pkgutil.walk_packages(root.__path__, package + "."):
    if not module.name.endswith(".__main__"):
        importlib.import_module(module.name)
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in blocked)))
"""


def imports_without(package: str, blocked: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _PROBE, package, ",".join(blocked)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("package", "blocked"),
    [
        # The operator: neither the plugin nor any generated client (kopf only probes
        # for them and does without; the operator talks plain aiohttp).
        ("session_operator", ("kubectl_session", "kubernetes", "kubernetes_asyncio", "pykube")),
        # The plugin: none of the operator's runtime, kopf or the asyncio client.
        ("kubectl_session", ("session_operator", "kopf", "kubernetes_asyncio", "aiohttp")),
        # The shared API: pure, so no client and neither side.
        (
            "rdev_api",
            ("session_operator", "kubectl_session", "kopf", "kubernetes", "kubernetes_asyncio"),
        ),
    ],
)
def test_each_package_imports_only_what_it_may(package: str, blocked: tuple[str, ...]) -> None:
    done = imports_without(package, blocked)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""


def test_the_probe_catches_a_forbidden_import() -> None:
    """The block is real: the plugin does need the official client."""
    done = imports_without("kubectl_session", ("kubernetes",))
    assert done.returncode != 0
    assert "kubectl_session imported kubernetes" in done.stderr
