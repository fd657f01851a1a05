#!/usr/bin/env python
"""Synthesise scribbles from dense annotations: the same command as ``rhmnet-synthesize-scribbles``
(:mod:`rhmnet.dataprep.scribble_synthesis`; ``--help`` shows the options)."""

import sys

from rhmnet.dataprep.scribble_synthesis import cli

if __name__ == "__main__":
    sys.exit(cli())
