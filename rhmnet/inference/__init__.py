"""Streaming per-frame inference."""

from rhmnet.inference.session import FrameResult, InferenceError, VideoSegmenter

__all__ = ["FrameResult", "InferenceError", "VideoSegmenter"]
