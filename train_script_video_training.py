#!/usr/bin/env python
"""RHMNet video training on YouTube-VOS + DAVIS (see ``rhmnet/engine/cli.py`` for the options)."""

import sys

from rhmnet.engine.cli import cli

if __name__ == "__main__":
    sys.exit(cli(stage="video", default_config="video_training"))
