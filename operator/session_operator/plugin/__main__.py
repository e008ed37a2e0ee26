"""``python -m session_operator.plugin``: the same as the ``kubectl-session`` script."""

import sys

from session_operator.plugin.cli import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
