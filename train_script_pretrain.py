#!/usr/bin/env python
"""RHMNet pre-training on COCO pseudo-clips (see ``rhmnet/engine/cli.py`` for the options)."""

import sys

from rhmnet.engine.cli import main

if __name__ == "__main__":
    sys.exit(main(stage="pretrain", default_config="pre_training"))
