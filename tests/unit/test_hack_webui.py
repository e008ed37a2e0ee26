"""hack/webui.sh with RDEV_WEBUI_NODE: the UI is installed and run with that Node.

A fake Node and an already installed cache stand in for the real ones (minutes
to install); the launcher it prints must put that Node first on the UI's PATH.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_NODE = """#!/bin/sh
# Answers the two questions hack/webui.sh asks: the major version, the binary.
case "$2" in
  process.execPath) echo "$0" ;;
  *) echo 22 ;;
esac
"""

UI = """#!/bin/sh
command -v node
echo "args: $*"
"""


def test_rdev_webui_node_runs_the_ui_with_that_node(tmp_path: Path) -> None:
    node_dir = tmp_path / "node22" / "bin"
    node_dir.mkdir(parents=True)
    node = node_dir / "node"
    node.write_text(FAKE_NODE)
    node.chmod(0o755)
    prefix = tmp_path / "cache" / "rdev-webui" / "node-22"
    bin_dir = prefix / "node_modules" / ".bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "claude-code-ui").write_text(UI)
    (bin_dir / "claude-code-ui").chmod(0o755)
    (prefix / ".installed").write_text("@cloudcli-ai/cloudcli node-22\n")
    # No other node on PATH: were RDEV_WEBUI_NODE ignored, nothing could be installed.
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("dirname", "mkdir", "flock", "ln", "chmod", "mv", "rm", "tail"):
        (tools / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    env = {
        "PATH": str(tools),
        "HOME": str(tmp_path),
        "RDEV_CACHE_DIR": str(tmp_path / "cache"),
        "RDEV_WEBUI_NODE": str(node),
    }
    done = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(ROOT / "hack" / "webui.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    launcher = done.stdout.strip()
    assert Path(launcher).is_relative_to(prefix)
    # Started as the operator starts it: with the pod's PATH, whose node is another.
    ran = subprocess.run(
        [launcher, "--port", "3001"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    which_node, args = ran.stdout.splitlines()
    assert Path(which_node).resolve() == node
    assert args == "args: --port 3001"
