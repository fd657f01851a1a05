"""Streaming per-frame inference."""

from rhmnet.inference.session import FrameResult, InferenceError, ScribbleMemory, VideoSegmenter
from rhmnet.inference.timing import SpeedMeter, VideoSpeed

__all__ = ["FrameResult", "InferenceError", "ScribbleMemory", "SpeedMeter", "VideoSegmenter", "VideoSpeed"]
