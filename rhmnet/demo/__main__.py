"""``python -m rhmnet.demo``: the demo's command line (:mod:`rhmnet.demo.cli`)."""

import sys

from rhmnet.demo.cli import main
from rhmnet.errors import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(main))
