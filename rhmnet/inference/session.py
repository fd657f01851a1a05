"""Streaming inference: initialise with a frame and its scribble, then step frame by frame.

This is the single path used by DAVIS evaluation, YouTube-VOS evaluation and ``rhmnet.segment``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from rhmnet.config import TestConfig
from rhmnet.errors import RHMNetError
from rhmnet.labels import BACKGROUND, MAX_OBJECTS, NUM_CHANNELS
from rhmnet.model import RHMNet
from rhmnet.model.backbones import Normalisation
from rhmnet.model.heads import all_channels
from rhmnet.model.memory import MemoryBank, MemoryEntry
from rhmnet.model.memory_encoder import one_hot
from rhmnet.model.rhmnet import FrameFeatures

Frame = Union[np.ndarray, torch.Tensor]


class InferenceError(RHMNetError, ValueError):
    """Bad input to the streaming API."""


@dataclass(frozen=True)
class ScribbleMemory:
    """The scribble-level memory entries (one per decoder layer) of one annotated frame, made by
    :meth:`VideoSegmenter.scribble_memory` for ``num_objects`` object slots; they depend only on the frame
    and its strokes, so one set serves every pass over the video."""

    entries: list[MemoryEntry]
    num_objects: int


class FrameResult:
    """Output for one frame, at the frame's own size. Channel 0 is background, 1..n the objects.

    ``probs`` is computed by :meth:`VideoSegmenter.step`; the label map, the K-channel views and the
    reliable-region map are derived on first access (no device-to-host copy inside ``step``).
    """

    def __init__(
        self,
        used: torch.Tensor,
        unused: torch.Tensor,
        reliable: Optional[tuple[torch.Tensor, torch.Tensor]],
        frame_num: int = 0,
    ) -> None:
        self._used, self._unused, self._reliable = used, unused, reliable
        self.probs = _background_first(used)  # [n+1, H, W]
        self.frame_num = frame_num
        self._labels: Optional[np.ndarray] = None

    @property
    def labels(self) -> np.ndarray:
        """``[H, W]`` uint8 argmax (0 background, 1..n objects); non-finite probabilities are an error (an
        argmax over NaN would label every pixel as object 1)."""
        if self._labels is None:
            if not bool(torch.isfinite(self.probs).all()):
                raise InferenceError(
                    f"frame {self.frame_num}: the model produced NaN or Inf probabilities (non-finite weights, "
                    "inputs or overflow); refusing to write a label map"
                )
            self._labels = _label_map(self.probs).cpu().numpy()
        return self._labels

    @property
    def full_probs(self) -> torch.Tensor:
        """``[K=12, H, W]`` all channels (0 unlabeled, 11 background), as the authors' tracker returns them."""
        return all_channels(self._used, self._unused)

    @property
    def reliable(self) -> torch.Tensor:
        """``[n+1, H, W]`` reliable-region probabilities (upsampled); needs ``step(..., with_reliable=True)``."""
        return _background_first(self._reliable_parts()[0])

    @property
    def full_reliable(self) -> torch.Tensor:
        """``[K=12, H, W]`` reliable-region probabilities; needs ``step(..., with_reliable=True)``."""
        return all_channels(*self._reliable_parts())

    def _reliable_parts(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._reliable is None:
            raise InferenceError("the reliable-region map is computed only with step(..., with_reliable=True)")
        return self._reliable


def pad_amounts(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` zero padding to a multiple; floor(d/2) before, the rest after."""
    dh, dw = -height % multiple, -width % multiple
    return dw // 2, dw - dw // 2, dh // 2, dh - dh // 2


def pad(x: torch.Tensor, amounts: tuple[int, int, int, int]) -> torch.Tensor:
    """Zero-pad the last two dimensions."""
    return F.pad(x, amounts) if any(amounts) else x


def crop(x: torch.Tensor, amounts: tuple[int, int, int, int]) -> torch.Tensor:
    """Undo :func:`pad`."""
    left, right, top, bottom = amounts
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]


@functools.lru_cache(maxsize=8)
def _normalisation(normalisation: Normalisation, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """The backbone's mean and std ``[3, 1, 1]`` on a device (made once, not copied from the host every frame)."""
    return normalisation.tensors(device, dtype)


def normalise_frame(
    frame: Frame, normalisation: Normalisation, device: torch.device, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """RGB frame (``uint8 HxWx3`` array, or float tensor ``[3,H,W]`` already normalised) -> ``[1,3,H,W]``,
    with the backbone's ``normalisation`` (``model.backbone.normalisation``)."""
    if isinstance(frame, np.ndarray):
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise InferenceError(f"a frame must be an RGB image of shape HxWx3, got shape {frame.shape}")
        if frame.dtype != np.uint8:
            raise InferenceError(f"a frame array must be uint8 RGB, got dtype {frame.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(frame)).to(device).permute(2, 0, 1).to(dtype) / 255.0
        mean, std = _normalisation(normalisation, device, dtype)
        return ((x - mean) / std).unsqueeze(0)
    if isinstance(frame, torch.Tensor):
        if frame.dim() != 3 or frame.shape[0] != 3 or not frame.is_floating_point():
            raise InferenceError(f"a frame tensor must be a normalised float [3, H, W], got {tuple(frame.shape)}")
        return frame.to(device=device, dtype=dtype).unsqueeze(0)
    raise InferenceError(f"a frame must be a numpy array or a tensor, got {type(frame).__name__}")


def working_size(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    """``(height, width)`` with the short side scaled to ``short_side`` (``size`` itself when 0)."""
    if short_side <= 0 or min(size) == short_side:
        return size
    scale = short_side / min(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def resize_scribble(onehot: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """One-hot scribble ``[1, K, H, W]`` resized so that thin strokes survive: a pixel of the result takes
    the label covering most of its area, and is labelled wherever any stroke touches it."""
    if tuple(onehot.shape[-2:]) == size:
        return onehot
    area = F.interpolate(onehot[:, 1:].float(), size=size, mode="area")  # channel 0 is "unlabeled"
    best, index = area.max(dim=1)
    labels = torch.where(best > 0, index + 1, torch.zeros_like(index))
    return one_hot(labels[0]).unsqueeze(0).to(onehot.dtype)


def scribble_to_onehot(scribble: Union[np.ndarray, torch.Tensor], device: torch.device) -> torch.Tensor:
    """Label map ``[H, W]`` (0 unlabeled, 1..10 objects, 11 background) or one-hot ``[K, H, W]`` -> ``[1,K,H,W]``."""
    t = torch.as_tensor(np.asarray(scribble) if isinstance(scribble, np.ndarray) else scribble, device=device)
    if t.dim() == 3 and t.shape[0] == NUM_CHANNELS:
        return t.float().unsqueeze(0)
    if t.dim() != 2:
        raise InferenceError(f"a scribble must be a label map [H, W] or one-hot [12, H, W], got {tuple(t.shape)}")
    if t.is_floating_point():
        raise InferenceError("a scribble label map must hold integers (0 unlabeled, 1..10 objects, 11 background)")
    if int(t.min()) < 0 or int(t.max()) > BACKGROUND:
        raise InferenceError(f"scribble values must lie in 0..{BACKGROUND}, found {int(t.min())}..{int(t.max())}")
    return one_hot(t).unsqueeze(0)


def _object_ids(onehot: torch.Tensor) -> list[int]:
    present = onehot[0, 1 : MAX_OBJECTS + 1].flatten(1).sum(1) > 0
    return [i + 1 for i in torch.nonzero(present).flatten().tolist()]


def _background_first(used: torch.Tensor) -> torch.Tensor:
    """``[unlabeled, objects..., background]`` -> ``[background, objects...]`` (device ops only, no index
    tensor copied from the host)."""
    return torch.cat([used[-1:], used[1:-1]])


def _label_map(probs: torch.Tensor) -> torch.Tensor:
    """Label map (uint8: 0 background, 1..n objects) of ``[n+1, H, W]`` probabilities (background first).

    Object channels are scanned in order, then background, keeping the first maximum: the same winner
    and tie-breaking as an argmax over the authors' 12 channels (objects before background; the unused
    channels hold the clamped minimum), with element-wise passes instead of a reduction over the outer
    dimension (which is slow on CPU).
    """
    best = probs[1]
    label = torch.ones(best.shape, dtype=torch.uint8, device=probs.device)
    for channel, value in [(c, c) for c in range(2, probs.shape[0])] + [(0, 0)]:
        better = probs[channel] > best
        label = torch.where(better, torch.full_like(label, value), label)
        best = torch.maximum(best, probs[channel])
    return label


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype of ``--precision`` (None for fp32); fp16 runs on CUDA only."""
    if precision not in PRECISIONS:
        raise InferenceError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise InferenceError(f"precision fp16 needs a CUDA device, got {device}; use bf16 or fp32")
    return PRECISIONS[precision]


class VideoSegmenter:
    """Streaming RHMNet inference for one video at a time (batch 1).

    ``initialize(frame0, scribble0)`` builds the initial-scribble memory; then ``step(frame)`` for every
    frame, frame 0 included, returns the masks and updates memory by the memory policy ``settings``
    (a :class:`~rhmnet.config.TestConfig`; default: the model's ``cfg.TEST``).

    Strokes on several frames: :meth:`scribble_memory` turns each further annotated frame into
    scribble-level entries, and ``initialize(..., other_scribbles=...)`` puts them into the memory beside
    the starting frame's own (every decoder layer reads them, as it reads the initial scribble). Without
    ``other_scribbles`` the memory is exactly the one-scribble memory.

    Each frame is encoded once: ``initialize`` (and ``add_objects``) keep the features of their frame,
    and the next ``step`` reuses them when it is given a frame with the same pixels (compared exactly,
    so a reused or modified buffer is encoded afresh).

    The constructor calls ``model.prepare_for_inference()`` (eval mode, channels-last weights, folded
    batch norm: in place, on the caller's model) unless the model is already prepared; call
    ``model.train()`` to train it again.

    ``precision``: ``fp32`` (default), or ``bf16`` / ``fp16`` (CUDA only) autocast around the model
    (not validated against fp32 accuracy yet). ``compile``: ``torch.compile`` the frame encoder (static
    shapes per video; on CUDA with CUDA graphs, mode ``reduce-overhead``).
    """

    def __init__(
        self,
        model: RHMNet,
        settings: Optional[TestConfig] = None,
        precision: str = "fp32",
        compile: bool = False,
    ) -> None:
        if not model.prepared_for_inference:
            model.prepare_for_inference()
        self.model = model
        self.settings = settings or model.cfg.TEST
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.normalisation: Normalisation = model.backbone.normalisation
        self.autocast_dtype = check_precision(precision, self.device)
        self._encode_fn = compiled_encoder(model, self.device) if compile else model.encode
        self.bank: Optional[MemoryBank] = None
        self.num_objects = 0
        self.valid: Optional[torch.Tensor] = None
        self.frame_size: Optional[tuple[int, int]] = None
        self.work_size: Optional[tuple[int, int]] = None  # the size the model sees (cfg.TEST.INPUT_SHORT_SIDE)
        self.padding = (0, 0, 0, 0)
        self.frame_num = 0
        self._kept: Optional[tuple[torch.Tensor, FrameFeatures]] = None  # (normalised frame, its features)

    # -- helpers --------------------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _prepare(self, frame: Frame) -> torch.Tensor:
        x = normalise_frame(frame, self.normalisation, self.device, self.dtype)
        if self.frame_size is not None and tuple(x.shape[-2:]) != self.frame_size:
            raise InferenceError(f"frame size {tuple(x.shape[-2:])} differs from the first frame's {self.frame_size}")
        return pad(self._to_work_size(x), self.padding)

    def _to_work_size(self, x: torch.Tensor) -> torch.Tensor:
        if self.work_size is None or tuple(x.shape[-2:]) == self.work_size:
            return x
        return F.interpolate(x, size=self.work_size, mode="bilinear", align_corners=False, antialias=True)

    def _to_frame_size(self, x: torch.Tensor) -> torch.Tensor:
        """Cropped outputs ``[C, h, w]`` at the working size back to the frame's size."""
        if tuple(x.shape[-2:]) == self.frame_size:
            return x
        return F.interpolate(x[None], size=self.frame_size, mode="bilinear", align_corners=False)[0]

    def _prepare_scribble(self, scribble: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:
        onehot = scribble_to_onehot(scribble, self.device)
        if tuple(onehot.shape[-2:]) != self.frame_size:
            raise InferenceError(
                f"scribble size {tuple(onehot.shape[-2:])} does not match the frame size {self.frame_size}"
            )
        return pad(resize_scribble(onehot, self.work_size), self.padding).to(self.dtype)

    def _set_geometry(self, image: torch.Tensor) -> None:
        """Frame size, working size and padding of a video from a normalised frame ``[1, 3, H, W]``."""
        self.frame_size = tuple(image.shape[-2:])
        self.work_size = working_size(self.frame_size, self.settings.INPUT_SHORT_SIDE)
        self.padding = pad_amounts(*self.work_size, self.model.stride)

    def _encode(self, x: torch.Tensor, keep: bool = False) -> FrameFeatures:
        """Features of a prepared frame; reuses the kept features of the same pixels (then forgets them)."""
        kept, self._kept = self._kept, None
        if kept is not None and kept[0].shape == x.shape and torch.equal(kept[0], x):
            feats = kept[1]
        else:
            with self._autocast():
                feats = self._encode_fn(x)
        if keep:
            self._kept = (x, feats)
        return feats

    # -- public API -----------------------------------------------------------------------------------
    @torch.inference_mode()
    def initialize(
        self,
        frame: Frame,
        scribble: Union[np.ndarray, torch.Tensor],
        num_objects: Optional[int] = None,
        object_ids: Optional[Sequence[int]] = None,
        other_scribbles: Sequence[ScribbleMemory] = (),
    ) -> None:
        """Start a video from a frame and its scribble.

        ``num_objects`` (default: the largest object id in the scribble) fixes the object slots; with
        ``num_objects`` given, a scribble of background strokes only is accepted (the objects are labelled
        on other frames). ``object_ids`` (default: all slots) are the objects valid from this frame on;
        others join later with :meth:`add_objects` (YouTube-VOS). ``other_scribbles`` (from
        :meth:`scribble_memory`, made for the same ``num_objects``) join the scribble-level memory. The
        frame's features are kept for the next :meth:`step`.
        """
        image = normalise_frame(frame, self.normalisation, self.device, self.dtype)
        self._set_geometry(image)
        onehot = self._prepare_scribble(scribble)
        present = _object_ids(onehot)
        n = num_objects if num_objects is not None else (max(present) if present else 0)
        if n < 1 or not (present or num_objects is not None):
            raise InferenceError("the scribble labels no object (values 1..10 mark objects)")
        if any(other.num_objects != n for other in other_scribbles):
            raise InferenceError(f"other scribbles must be made for the same {n} object slots")
        if n > MAX_OBJECTS:
            raise InferenceError(f"at most {MAX_OBJECTS} objects are supported, got {n}")
        ids = list(object_ids) if object_ids is not None else list(range(1, n + 1))
        if any(not 1 <= i <= n for i in ids):
            raise InferenceError(f"object ids {ids} must lie in 1..{n}")
        self.num_objects = n
        self.valid = torch.zeros(1, n, device=self.device, dtype=self.dtype)
        self.valid[0, [i - 1 for i in ids]] = 1
        self._kept = None
        feats = self._encode(pad(self._to_work_size(image), self.padding), keep=True)
        with self._autocast():
            entries = self.model.initial_entries(feats, onehot, n, self.settings.USING_INITIAL_BG)
        self.bank = MemoryBank(
            entries,
            self.model.scribble_for_masks,
            reuse_buffers=True,
            other_scribbles=[other.entries for other in other_scribbles],
        )
        self.frame_num = 0

    @torch.inference_mode()
    def add_objects(self, frame: Frame, scribble: Union[np.ndarray, torch.Tensor], object_ids: Sequence[int]) -> None:
        """Objects that first appear on ``frame``: rebuild their initial-scribble slots from this frame.

        The frame's features are kept for the next :meth:`step`."""
        if self.bank is None or self.valid is None:
            raise InferenceError("call initialize() before add_objects()")
        if any(not 1 <= i <= self.num_objects for i in object_ids):
            raise InferenceError(f"object ids {list(object_ids)} must lie in 1..{self.num_objects}")
        onehot = self._prepare_scribble(scribble)
        feats = self._encode(self._prepare(frame), keep=True)
        with self._autocast():
            fresh = self.model.initial_entries(feats, onehot, self.num_objects, True)
        rows = [i - 1 for i in object_ids]
        for entry, new in zip(self.bank.initial, fresh):
            entry.replace_objects(new, rows)
        self.valid[0, rows] = 1

    @torch.inference_mode()
    def step(self, frame: Frame, frame_num: Optional[int] = None, with_reliable: bool = False) -> FrameResult:
        """Segment the next frame (``frame_num`` defaults to a running counter from 0).

        ``with_reliable`` also upsamples the reliable-region map (``FrameResult.reliable``); no host
        synchronisation happens here (labels are copied to the host when read).
        """
        if self.bank is None or self.valid is None:
            raise InferenceError("call initialize() with the first frame and its scribble before step()")
        frame_num = self.frame_num if frame_num is None else frame_num
        x = self._prepare(frame)
        feats = self._encode(x)
        with self._autocast():
            out = self.model.decode(feats, self.bank, self.valid, used_channels_only=True)
            entries = self.model.mask_entries(out, feats.size, 0.0, 1)
        self.bank.update(out.reliable_entry, entries, frame_num, self.settings)
        self.bank.previous_cells = self.model.previous_frame_cells(out, self.bank, self.num_objects)
        self.frame_num = frame_num + 1
        used = self._to_frame_size(crop(out.mask_probs[-1][0].float(), self.padding))
        unused = self._to_frame_size(crop(out.mask_unused[-1][0].float(), self.padding))
        reliable = None
        if with_reliable:
            parts = torch.cat([out.reliable_prob, out.reliable_unused], dim=1).float()
            parts = F.interpolate(parts, size=x.shape[-2:], mode="bilinear", align_corners=True)[0]
            parts = self._to_frame_size(crop(parts, self.padding))
            reliable = (parts[:-1], parts[-1:])
        return FrameResult(used, unused, reliable, frame_num)

    @torch.inference_mode()
    def scribble_memory(
        self, frame: Frame, scribble: Union[np.ndarray, torch.Tensor], num_objects: int
    ) -> ScribbleMemory:
        """Scribble-level entries of an annotated frame (``num_objects`` slots; its strokes may label some
        objects, or only background), for ``initialize(..., other_scribbles=...)`` of this video: call it
        before ``initialize`` (it sets the video's frame geometry). Leaves the memory and the kept features
        alone."""
        if not 1 <= num_objects <= MAX_OBJECTS:
            raise InferenceError(f"num_objects must lie in 1..{MAX_OBJECTS}, got {num_objects}")
        image = normalise_frame(frame, self.normalisation, self.device, self.dtype)
        self._set_geometry(image)
        onehot = self._prepare_scribble(scribble)
        x = pad(self._to_work_size(image), self.padding)
        with self._autocast():
            feats = self._encode_fn(x)
            entries = self.model.initial_entries(feats, onehot, num_objects, self.settings.USING_INITIAL_BG)
        return ScribbleMemory(entries, num_objects)


def compiled_encoder(model: RHMNet, device: torch.device) -> Callable[[torch.Tensor], FrameFeatures]:
    """``torch.compile`` of the model's frame encoder (backbone, bottleneck, head adapters) with static
    shapes (one graph per frame size); on CUDA in ``reduce-overhead`` mode (CUDA graphs)."""
    mode = "reduce-overhead" if device.type == "cuda" else None
    return torch.compile(model.encode, dynamic=False, mode=mode)
