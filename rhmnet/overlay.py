"""Drawing label maps over frames, with the DAVIS palette (one colour per object id)."""

from __future__ import annotations

import cv2
import numpy as np

from rhmnet.data.io import DAVIS_PALETTE
from rhmnet.labels import BACKGROUND, MAX_OBJECTS


def overlay(
    frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5, outline: bool = True, show_background: bool = False
) -> np.ndarray:
    """RGB ``frame`` with objects ``1..10`` of ``labels`` tinted in their DAVIS colour (and outlined).

    ``show_background`` paints background-scribble pixels (label 11) white, for drawing scribbles.
    """
    labels = np.asarray(labels)
    objects = (labels > 0) & (labels <= MAX_OBJECTS)
    colours = DAVIS_PALETTE[np.where(objects, labels, 0)]
    out = frame.copy()
    out[objects] = (frame[objects] * (1 - alpha) + colours[objects] * alpha).astype(np.uint8)
    if outline:
        edges = cv2.morphologyEx(objects.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        out[edges] = colours[edges]
    if show_background:
        out[labels == BACKGROUND] = 255
    return out
