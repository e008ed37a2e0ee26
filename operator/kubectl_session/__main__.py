"""``python -m kubectl_session``: the same as the ``kubectl-session`` script."""

import sys

from kubectl_session.cli import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
