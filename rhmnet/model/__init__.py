"""Network modules of RHMNet."""

from rhmnet.model.rhmnet import ClipOutput, FrameFeatures, FrameOutput, RHMNet

__all__ = ["ClipOutput", "FrameFeatures", "FrameOutput", "RHMNet"]
