#!/usr/bin/env python
"""RHMNet pre-training on COCO pseudo-clips (see ``rhmnet/engine/cli.py`` for the options)."""

import sys

from rhmnet.engine.cli import cli

if __name__ == "__main__":
    sys.exit(cli(stage="pretrain", default_config="pre_training"))
