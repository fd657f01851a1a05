"""``python -m rhmnet.studio``: the same as ``rhmnet-studio``."""

import sys

from rhmnet.studio.server import cli

sys.exit(cli())
