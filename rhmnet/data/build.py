"""Training datasets from the config: ``pretrain`` -> COCO pseudo-clips, ``video`` -> YouTube-VOS + DAVIS
mix. Roots and options come from ``cfg.DATASETS`` / ``cfg.TRAIN`` (their values are checked when the config
loads: ``rhmnet.config.checks``)."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from rhmnet.config import ConfigError
from rhmnet.data.coco import CocoScribbleDataset
from rhmnet.data.davis import DavisScribbleDataset
from rhmnet.data.mixing import MixedClipDataset
from rhmnet.data.sample import ClipOptions
from rhmnet.data.youtube import YtbScribbleDataset
from rhmnet.model.backbones import backbone_normalisation

STAGES = ("pretrain", "video")


def clip_options(cfg: Any, section: Any) -> ClipOptions:
    """ClipOptions from ``cfg.DATASETS`` and one dataset section (``COCOS``, ``YTB`` or ``DAVIS``)."""
    data = cfg.DATASETS
    normalisation = backbone_normalisation(cfg.MODEL.BACKBONE.NAME)  # what the model's backbone expects
    return ClipOptions(
        clip_length=section.CLIP_LENGTH,
        crop_size=(data.CROP_SIZE[0], data.CROP_SIZE[1]),
        max_objects=data.MAX_OBJECT_NUM,
        minimum_area=data.MINIMUM_AREA,
        others_to_background=section.ADDITIONAL_BG,
        memory_bg=data.MEMORY_BG,
        in_clip_flip=section.RANDOM_FLIP,
        bidirection=data.BIDIRECTION,
        dilate_kernel_size=data.DILATE_KERNEL_SIZE,
        resize_short_side=data.RESIZE_SHORT_SIDE,
        paste_probability=data.PASTE_OBJECTS_PROBABILITY,
        paste_max_objects=data.PASTE_MAX_OBJECTS,
        mean=normalisation.mean,
        std=normalisation.std,
    )


def build_train_dataset(cfg: Any, stage: str) -> Dataset:
    """The training dataset of a stage: ``"pretrain"`` (COCO, one sample per listed image per epoch) or
    ``"video"`` (YouTube-VOS and DAVIS mixed by ``DATASETS.SAMPLE_PROBABILITY``, ``TRAIN.SAMPLES_PER_EPOCH``
    samples per epoch; the first ``DATASETS.WARMUP_EPOCHS`` by ``DATASETS.WARMUP_SAMPLE_PROBABILITY``). A
    dataset whose probability is 0 in both is not opened."""
    data = cfg.DATASETS
    if stage == "pretrain":
        coco = data.COCOS
        return CocoScribbleDataset(
            coco.IMG_DIR,
            coco.ANNO_DIR,
            coco.JSON_PATH,
            clip_options(cfg, coco),
            transform_mode=coco.TRANSFORM_MODE,
            affine_range=tuple(coco.AFFINE_RANGE),
        )
    if stage != "video":
        raise ConfigError(f"unknown training stage {stage!r} (expected one of {', '.join(STAGES)})")
    probabilities = data.SAMPLE_PROBABILITY
    warmup = data.WARMUP_SAMPLE_PROBABILITY if data.WARMUP_EPOCHS > 0 else probabilities
    init_skip = cfg.TRAIN.INIT_SKIP
    factories = (
        lambda: YtbScribbleDataset(data.YTB.ROOT, clip_options(cfg, data.YTB), init_skip=init_skip),
        lambda: DavisScribbleDataset(data.DAVIS.PATH, clip_options(cfg, data.DAVIS), init_skip=init_skip),
    )
    chosen = [(make(), p, w) for make, p, w in zip(factories, probabilities, warmup) if p > 0 or w > 0]
    return MixedClipDataset(
        [d for d, _, _ in chosen],
        [p for _, p, _ in chosen],
        cfg.TRAIN.SAMPLES_PER_EPOCH,
        temporal_flip=data.VIDEO_TEMPORAL_FLIP,
        init_skip=init_skip,
        mosaic_probability=data.MOSAIC_PROBABILITY,
        warmup_probabilities=[w for _, _, w in chosen],
        warmup_epochs=data.WARMUP_EPOCHS,
    )


def set_skip(dataset: Dataset, skip: int) -> bool:
    """Set the frame-gap curriculum of a training dataset (also through ``Subset``-like wrappers).
    Returns whether a dataset took it. Note: DataLoader workers hold copies; non-persistent workers see
    the new value from the next epoch on (as in the authors' code)."""
    return call_wrapped(dataset, "change_skip", skip)


def set_mix_epoch(dataset: Dataset, epoch: int) -> bool:
    """Tell an epoch-dependent mix (``MixedClipDataset``: its warm-up) which epoch is drawn, through
    ``Subset``-like wrappers; returns whether a dataset took it."""
    return call_wrapped(dataset, "set_epoch", epoch)


def call_wrapped(dataset: Any, method: str, value: int) -> bool:
    """Call ``method(value)`` on the first dataset that has it along a chain of wrappers (``.dataset``)."""
    while dataset is not None:
        function = getattr(dataset, method, None)
        if callable(function):
            function(value)
            return True
        dataset = getattr(dataset, "dataset", None)
    return False
