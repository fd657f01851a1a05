"""Data-preparation tools (used by ``scripts/``, ``rhmnet-synthesize-scribbles`` and the demo, not by training
itself): scribble synthesis from dense masks, the synthetic scribble-VOS dataset, the DAVIS interactive-scribble
converter, the fixed validation split (``splits``) and the multi-object validation videos (``multiobject``)."""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path:
    """The developers' ``shared/`` material (reference outputs, DAVIS sample): ``$RHMNET_SHARED``, else the
    ``shared`` folder beside the checkout. It may not exist (a user's clone); callers check."""
    return Path(os.environ.get("RHMNET_SHARED", Path(__file__).resolve().parents[3] / "shared"))
