"""``python -m rhmnet.demo``: the demo's command line, as ``rhmnet-demo`` (:mod:`rhmnet.demo.cli`)."""

import sys

from rhmnet.demo.cli import cli

if __name__ == "__main__":
    sys.exit(cli())
