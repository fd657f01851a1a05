"""Streaming per-frame inference."""

from rhmnet.inference.session import FrameResult, InferenceError, ScribbleMemory, VideoSegmenter

__all__ = ["FrameResult", "InferenceError", "ScribbleMemory", "VideoSegmenter"]
