"""RDEV_ environment settings: parsed once, and a bad value names its variable."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from rdev_api.reasons import REASONS
from session_operator import docsgen
from session_operator.settings import Settings, SettingsError, load_settings, unknown_variables


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("RDEV_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    s = load_settings()
    assert s.repo_path == "/workspace/repo"
    assert s.worktree_root == "/workspace/sessions"
    assert s.webui_command == ("claude-code-ui",)
    assert s.webui_port == 3001
    assert s.protected_branches == frozenset({"main", "master"})
    assert s.changes_interval == timedelta(minutes=5)
    assert s.namespaces == ()
    assert s.preview_url_template == ""


def test_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RDEV_RETRY_INTERVAL", "1s")
    monkeypatch.setenv("RDEV_CHANGES_INTERVAL", " 1h30m ")
    monkeypatch.setenv("RDEV_PROGRESS_DEADLINE", "2d")
    monkeypatch.setenv("RDEV_EXEC_TIMEOUT", "1.5s")
    s = load_settings()
    assert s.retry_interval == timedelta(seconds=1)
    assert s.changes_interval == timedelta(hours=1, minutes=30)
    assert s.progress_deadline == timedelta(days=2)
    assert s.exec_timeout == timedelta(seconds=1.5)


def test_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RDEV_NAMESPACES", " team-a, team-b ,,")
    monkeypatch.setenv("RDEV_PROTECTED_BRANCHES", "main, release/1.0 ,prod")
    s = load_settings()
    assert s.namespaces == ("team-a", "team-b")
    assert s.protected_branches == frozenset({"main", "release/1.0", "prod"})


def test_command_is_split_like_a_shell_would_but_never_run_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RDEV_WEBUI_COMMAND", "node 'my server.js' --port=$PORT \"a b\"")
    assert load_settings().webui_command == ("node", "my server.js", "--port=$PORT", "a b")


def test_template_accepts_known_placeholders(monkeypatch: pytest.MonkeyPatch) -> None:
    template = "https://{session}-{port}.{namespace}.{project}.example.com/{service}"
    monkeypatch.setenv("RDEV_PREVIEW_URL_TEMPLATE", template)
    assert load_settings().preview_url_template == template


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("RDEV_WEBUI_PORT", "0", "greater than or equal to 1"),
        ("RDEV_WEBUI_PORT", "65536", "less than or equal to 65535"),
        ("RDEV_WEBUI_PORT", "http", "integer"),
        ("RDEV_PREVIEW_URL_TEMPLATE", "https://{sesion}.example.com", "unknown placeholder"),
        ("RDEV_INGRESS_HOST_TEMPLATE", "{0}.example.com", "unknown placeholder"),
        ("RDEV_RETRY_INTERVAL", "10", "not a duration"),
        ("RDEV_RETRY_INTERVAL", "soon", "not a duration"),
        ("RDEV_EXEC_TIMEOUT", "99999999999999999999h", "too long"),
        ("RDEV_WEBUI_COMMAND", "   ", "must name a command"),
        ("RDEV_WEBUI_COMMAND", "'unclosed", "quotation"),
        ("RDEV_PROTECTED_BRANCHES", "main,a..b", "not a valid branch name"),
        ("RDEV_WORKERS", "0", "greater than or equal to 1"),
        ("RDEV_LOG_FORMAT", "xml", "pattern"),
        ("RDEV_LOG_LEVEL", "debug", "pattern"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    text = str(info.value)
    assert f"{name}:" in text
    assert fragment in text


def test_every_bad_variable_is_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RDEV_WEBUI_PORT", "0")
    monkeypatch.setenv("RDEV_RETRY_INTERVAL", "x")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "RDEV_WEBUI_PORT" in str(info.value) and "RDEV_RETRY_INTERVAL" in str(info.value)


def test_settings_error_stops_the_process() -> None:
    assert issubclass(SettingsError, SystemExit)


def test_frozen() -> None:
    s = Settings()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        s.webui_port = 1  # type: ignore[misc]


def test_unknown_variables_name_the_nearest_setting() -> None:
    environ = {
        "RDEV_WORKRES": "4",  # misspelt
        "rdev_log_levl": "DEBUG",  # any case, as pydantic-settings reads them
        "RDEV_WORKERS": "8",  # known
        "RDEV_NOTHING_LIKE_IT": "1",
        "HOME": "/root",
    }
    assert unknown_variables(environ) == [
        ("RDEV_NOTHING_LIKE_IT", None),
        ("RDEV_WORKRES", "RDEV_WORKERS"),
        ("rdev_log_levl", "RDEV_LOG_LEVEL"),
    ]


def test_every_setting_documents_itself() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description and len(field.description) > 10, name


def test_docs_settings_md_is_generated_from_the_model() -> None:
    """``python -m session_operator.docsgen --check``: fails when docs/settings.md is stale."""
    assert docsgen.main(["--check"]) == 0
    text = docsgen.SETTINGS_DOC.read_text()
    for name in Settings.model_fields:
        assert text.count(f"| `RDEV_{name.upper()}` |") == 1, name
    assert "| `RDEV_EXEC_OUTPUT_LIMIT` | `1Mi` |" in text
    assert "| `RDEV_WEBUI_COMMAND` | `claude-code-ui` |" in text
    assert "| `RDEV_STALLED_RECHECK_INTERVAL` | `60s` |" in text


def test_docs_api_md_reasons_table_is_generated_from_the_reasons() -> None:
    text = docsgen.API_DOC.read_text()
    block = text.split(docsgen.REASONS_BEGIN, 1)[1].split(docsgen.REASONS_END, 1)[0]
    assert block.strip() == docsgen.reasons_table()
    for reason in REASONS:
        assert f"| `{reason}` |" in block
