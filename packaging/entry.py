"""Entry point of the frozen app: the same CLI as `trayapp` (the GUI when given no command)."""

import sys

from trayapp.cli import main

if __name__ == "__main__":
    sys.exit(main())
