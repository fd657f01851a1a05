#!/usr/bin/env python
"""RHMNet video training on YouTube-VOS + DAVIS, as ``rhmnet-train`` (see ``rhmnet/engine/cli.py`` for the options)."""

import sys

from rhmnet.engine.cli import train_video

if __name__ == "__main__":
    sys.exit(train_video())
