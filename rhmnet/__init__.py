"""RHMNet: Reliability-Hierarchical Memory Network for scribble-supervised video object segmentation."""

from rhmnet.config import Config, load_config
from rhmnet.model_io import CheckpointError, build_model, load_model, save_model

__version__ = "0.1.0"

__all__ = ["CheckpointError", "Config", "build_model", "load_config", "load_model", "save_model", "__version__"]
