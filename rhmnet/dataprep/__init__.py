"""Data-preparation tools (used by ``scripts/`` and the demo, not by training itself): scribble synthesis
from dense masks, the synthetic scribble-VOS dataset, and the DAVIS interactive-scribble converter."""
