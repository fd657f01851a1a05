"""Streaming per-frame inference."""

from rhmnet.inference.session import FrameResult, InferenceError, InferenceSettings, VideoSegmenter

__all__ = ["FrameResult", "InferenceError", "InferenceSettings", "VideoSegmenter"]
