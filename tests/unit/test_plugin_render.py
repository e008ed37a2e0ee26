"""kubectl session: list columns, describe text and the argv it runs, without a cluster."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from kubectl_session import render
from kubectl_session.cli import build_parser, main, remote_port, split_command
from kubectl_session.podstream import in_dir
from rdev_api.names import webui_log

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


def ts(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def session(name: str = "hello", **status: Any) -> dict[str, Any]:
    spec = status.pop("spec", {})
    return {
        "metadata": {
            "name": name,
            "namespace": "demo",
            "creationTimestamp": ts(-timedelta(hours=1)),
        },
        "spec": {"project": "demo", "branch": "feature/hello", **spec},
        "status": status,
    }


def test_list_row_shows_time_left_to_expiry_and_to_the_idle_stop() -> None:
    obj = session(
        phase="Active",
        branch="feature/hello",
        webUI="Running",
        expiresAt=ts(timedelta(hours=7, minutes=30)),
        lastActivityAt=ts(-timedelta(minutes=10)),
        spec={"idleTimeout": "30m"},
    )
    assert render.list_row(obj, NOW) == [
        "hello",
        "demo",
        "feature/hello",
        "Active",
        "Running",
        "7h30m",
        "20m",
        "1h",
    ]


def test_list_row_without_idle_timeout_or_status() -> None:
    obj = session()
    row = render.list_row(obj, NOW)
    assert row[3] == "Pending"
    assert row[5] == "-"  # no expiresAt yet
    assert row[6] == "-"  # no idle timeout


def test_list_row_of_an_ended_session_has_no_deadlines() -> None:
    obj = session(
        phase="Ended",
        expiresAt=ts(timedelta(hours=2)),
        lastActivityAt=ts(-timedelta(minutes=1)),
        spec={"idleTimeout": "30m"},
    )
    row = render.list_row(obj, NOW)
    assert row[5:7] == ["-", "-"]


def test_overdue_deadlines_read_due() -> None:
    obj = session(phase="Active", expiresAt=ts(-timedelta(seconds=5)))
    assert render.list_row(obj, NOW)[5] == "due"


def test_table_aligns_columns_like_kubectl() -> None:
    text = render.session_table(
        [session("a", phase="Active"), session("longer-name", phase="Pending")], NOW
    )
    lines = text.splitlines()
    assert lines[0].split("   ")[0].startswith("NAME")
    assert lines[0].index("PROJECT") == lines[1].index("demo") == lines[2].index("demo")
    assert all(line == line.rstrip() for line in lines)
    assert "EXPIRES IN" in lines[0] and "IDLE STOP IN" in lines[0]


def test_data_output_is_json_or_yaml() -> None:
    value = render.as_list([session()])
    assert json.loads(render.data(value, "json"))["items"][0]["metadata"]["name"] == "hello"
    assert yaml.safe_load(render.data(value, "yaml"))["kind"] == "List"


def test_describe_lists_status_conditions_events_and_changes() -> None:
    obj = session(
        phase="Active",
        podName="demo-0",
        container="dev",
        checkoutPath="/w/sessions/hello",
        commit="0123456789abcdef",
        conditions=[{"type": "Ready", "status": "True", "reason": "Active", "message": "ok"}],
        changes={"uncommittedFiles": 2, "untrackedFiles": 1, "unpushedCommits": 3},
    )
    events = [
        {
            "type": "Normal",
            "reason": "CheckedOut",
            "message": "worktree added",
            "lastTimestamp": ts(-timedelta(minutes=5)),
            "count": 1,
        },
        {
            "type": "Warning",
            "reason": "ExecFailed",
            "message": "boom",
            "lastTimestamp": ts(-timedelta(minutes=50)),
            "count": 3,
        },
    ]
    text = render.describe(obj, events, NOW)
    assert "demo-0 (container dev)" in text
    assert "/w/sessions/hello at 0123456789ab" in text
    assert "Uncommitted files:  2" in text and "Unpushed commits:   3" in text
    assert "Ready" in text and "Active" in text
    # Events oldest first, the newest last.
    assert text.index("ExecFailed") < text.index("CheckedOut")


def test_exec_runs_the_command_in_the_worktree_as_positional_arguments() -> None:
    argv = in_dir("/w/sessions/it's", ["git", "status", "--short", "; rm -rf /"])
    assert argv[:3] == ["sh", "-c", 'cd -- "$1" && shift && exec "$@"']
    assert argv[3:] == ["sh", "/w/sessions/it's", "git", "status", "--short", "; rm -rf /"]


def test_the_web_ui_log_lives_in_the_run_dir_beside_the_worktrees() -> None:
    assert webui_log("/w/sessions/hello", "hello") == "/w/sessions/.rdev/hello/webui.log"
    assert webui_log("/w/sessions/hello/", "hello") == "/w/sessions/.rdev/hello/webui.log"


def test_open_picks_the_web_ui_while_it_runs_else_the_preview() -> None:
    running = session(webUI="Running", servicePort=3001, spec={"webUI": True})
    stopped = session(webUI="Stopped", servicePort=8080, spec={"previewPort": 9000})
    assert remote_port(running, False, False) == (3001, "web UI")
    assert remote_port(running, False, True) == (8080, "preview")
    assert remote_port(stopped, False, False) == (8080, "preview")
    assert remote_port(stopped, True, False) == (3001, "web UI")
    assert remote_port(stopped, False, True) == (9000, "preview")


def test_exec_takes_everything_after_the_double_dash() -> None:
    words, command = split_command(["exec", "hello", "-i", "--", "ls", "-la", "--", "-n"])
    assert command == ["ls", "-la", "--", "-n"]
    args = build_parser().parse_args(words)
    assert args.name == "hello" and args.stdin and not args.tty
    assert split_command(["list", "--", "x"]) == (["list", "--", "x"], None)


def test_usage_errors_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["create", "x", "--project", "p"])
    assert exited.value.code == 1
    assert "--branch" in capsys.readouterr().err


def test_connection_options_go_before_or_after_the_verb() -> None:
    before = build_parser().parse_args(["-n", "demo", "--context", "c", "list"])
    after = build_parser().parse_args(["list", "-n", "demo", "--context", "c"])
    for args in (before, after):
        assert (args.namespace, args.context, args.kubeconfig) == ("demo", "c", None)
    assert build_parser().parse_args(["list"]).namespace is None
