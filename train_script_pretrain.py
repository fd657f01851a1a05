#!/usr/bin/env python
"""RHMNet pre-training on COCO pseudo-clips, as ``rhmnet-pretrain`` (see ``rhmnet/engine/cli.py`` for the options)."""

import sys

from rhmnet.engine.cli import pretrain

if __name__ == "__main__":
    sys.exit(pretrain())
