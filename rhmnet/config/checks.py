"""Every check on a config value, in one place: :func:`check_config`, run by the loader on every config it
returns (named file, overrides, a config stored in a checkpoint).

Code that uses a value relies on it having passed here; the model, data and training code do not check
config values again. Left to the model, because they depend on what is built: the backbone's name, weights
and stage count (``MODEL.BACKBONE.NAME``, ``WEIGHTS_PATH``, the upper end of ``FROZEN_STAGES``), and one
``MODEL.TRANSFORMER.REFINE_THRESHOLD`` per decoder layer, which the authors' defaults (the base of their
experiment files, which must load) do not satisfy. Each error is one line naming the key, the value and what
is allowed.
"""

from __future__ import annotations

from typing import NoReturn

from rhmnet.config.compat import check_compat_values
from rhmnet.config.schema import Config, ConfigError, value_at
from rhmnet.labels import MAX_OBJECTS
from rhmnet.ranges import AT_LEAST_0, AT_LEAST_1, POSITIVE, UNIT, UNIT_OPEN_TOP, Range

# The valid range of every numeric key (a list key: of each of its items; an unset optional key, None,
# is not checked).
VALUE_RANGES: dict[str, Range] = {
    "MODEL.HIDDEN_DIM": AT_LEAST_1,
    "MODEL.REFINE_LAYERS": AT_LEAST_1,
    "MODEL.TOTAL_STRIDE": AT_LEAST_1,
    "MODEL.OBJECT_THRESHOLD": UNIT,
    "MODEL.POS_TABLE_SIZE": AT_LEAST_1,
    "MODEL.BACKBONE.FROZEN_STAGES": AT_LEAST_0,
    "MODEL.ATTACH.THRESHOLD_MEAN_FEAT": UNIT,
    "MODEL.ATTACH.THRESHOLD_SOFT_LABEL": UNIT,
    "MODEL.TRANSFORMER.NHEAD": AT_LEAST_1,
    "MODEL.TRANSFORMER.DIM_FEEDFORWARD": AT_LEAST_1,
    "MODEL.TRANSFORMER.DROPOUT": UNIT_OPEN_TOP,
    "MODEL.TRANSFORMER.REFINE_THRESHOLD": UNIT,
    "DATASETS.MINIMUM_AREA": AT_LEAST_0,
    "DATASETS.MAX_OBJECT_NUM": Range(1, MAX_OBJECTS),
    "DATASETS.DILATE_KERNEL_SIZE": AT_LEAST_0,
    "DATASETS.CROP_SIZE": Range(16),
    "DATASETS.SAMPLE_PROBABILITY": AT_LEAST_0,
    "DATASETS.WARMUP_SAMPLE_PROBABILITY": AT_LEAST_0,
    "DATASETS.MOSAIC_PROBABILITY": UNIT,
    "DATASETS.WARMUP_EPOCHS": AT_LEAST_0,
    "DATASETS.PASTE_OBJECTS_PROBABILITY": UNIT,
    "DATASETS.PASTE_MAX_OBJECTS": Range(1, MAX_OBJECTS - 1),  # a clip keeps one object of its own
    "DATASETS.RESIZE_SHORT_SIDE": AT_LEAST_1,
    "DATASETS.COCOS.AFFINE_RANGE": POSITIVE,  # divisors of the frame size
    "DATASETS.COCOS.CLIP_LENGTH": AT_LEAST_1,
    "DATASETS.YTB.CLIP_LENGTH": AT_LEAST_1,
    "DATASETS.DAVIS.CLIP_LENGTH": AT_LEAST_1,
    "TRAIN.NUM_WORKERS": AT_LEAST_0,
    "TRAIN.BATCH_SIZE": AT_LEAST_1,
    "TRAIN.EPOCH": AT_LEAST_1,
    "TRAIN.LR": POSITIVE,
    "TRAIN.BACKBONE_MULTIPLIER": AT_LEAST_0,
    "TRAIN.WEIGHT_DECAY": AT_LEAST_0,
    "TRAIN.STEP_SIZE": AT_LEAST_1,
    "TRAIN.MAX_SKIP": AT_LEAST_0,
    "TRAIN.INIT_SKIP": AT_LEAST_0,
    "TRAIN.SKIP_INCREASE_STEP": AT_LEAST_1,
    "TRAIN.LR_DECREASE_STEP": AT_LEAST_1,
    "TRAIN.SAMPLES_PER_EPOCH": AT_LEAST_1,
    "TRAIN.ACCUMULATE_STEPS": AT_LEAST_1,
    "TRAIN.GRAD_CLIP": AT_LEAST_0,
    "TRAIN.EMA_DECAY": UNIT_OPEN_TOP,
    "TRAIN.LOG_INTERVAL": AT_LEAST_1,
    "TRAIN.LOSS.MASK.WEIGHT": AT_LEAST_0,
    "TRAIN.LOSS.MASK.BG_WEIGHT": AT_LEAST_0,
    "TRAIN.LOSS.SMOOTH.ALPHA": AT_LEAST_0,
    "TRAIN.LOSS.SMOOTH.WEIGHT": AT_LEAST_0,
    "TRAIN.LOSS.CONSISTENCY.WEIGHT": AT_LEAST_0,
    "TRAIN.LOSS.SCRIBBLE_LOSS.ALPHA": UNIT,
    "TRAIN.LOSS.SCRIBBLE_LOSS.GAMMA": AT_LEAST_0,
    "TRAIN.LOSS.SCRIBBLE_LOSS.WEIGHT": AT_LEAST_0,
    "TEST.MAX_MEMORY_LENGTH": AT_LEAST_1,
    "TEST.UPDATE_FREQUENCY": AT_LEAST_1,
    "TEST.SCRIBBLE_UPDATE_FREQUENCY": AT_LEAST_1,
    "TEST.INPUT_SHORT_SIDE": AT_LEAST_0,
}

# The values a string key can take.
VALUE_CHOICES: dict[str, tuple[str, ...]] = {
    "MODEL.TRANSFORMER.ACTIVATION": ("relu", "gelu"),
    "MODEL.LABEL_READOUT": ("none", "attention", "features"),
    "DATASETS.COCOS.TRANSFORM_MODE": ("perspective", "affine"),
    "TRAIN.OPTIMIZER": ("AdamW", "Adam"),
    # auto: as the authors' scripts, poly for the video stage and step for pre-training
    "TRAIN.LR_SCHEDULE": ("auto", "poly", "step"),
}


def _reject(key: str, problem: str) -> NoReturn:
    raise ConfigError(f"config key {key}: {problem}")


def _check_ranges(cfg: Config) -> None:
    """Every key of :data:`VALUE_RANGES` inside its range, every key of :data:`VALUE_CHOICES` one of its
    values."""
    for key, valid in VALUE_RANGES.items():
        value = value_at(cfg, key)
        if value is None:
            continue
        for index, item in enumerate(value) if isinstance(value, list) else [(None, value)]:
            problem = valid.problem(item)
            if problem is not None:
                _reject(key if index is None else f"{key}[{index}]", problem)
    for key, choices in VALUE_CHOICES.items():
        value = value_at(cfg, key)
        if value not in choices:
            _reject(key, f"must be one of {', '.join(choices)}, got {value!r}")


def _check_mix_weights(key: str, weights: list[float]) -> None:
    """Two ``[YouTube-VOS, DAVIS]`` weights (each >= 0: :data:`VALUE_RANGES`) with a positive sum."""
    if len(weights) != 2 or sum(weights) <= 0:
        _reject(key, f"must give two [YouTube-VOS, DAVIS] weights, non-negative with a positive sum (else it "
                     f"selects no dataset), got {weights}")


def _check_combinations(cfg: Config) -> None:
    """The lengths of list keys and the keys that must agree with each other."""
    model, data = cfg.MODEL, cfg.DATASETS
    crop = data.CROP_SIZE
    if len(crop) != 2:
        _reject("DATASETS.CROP_SIZE", f"expected [height, width], each >= 16, got {crop}")
    if any(side % 4 for side in crop):
        _reject("DATASETS.CROP_SIZE", f"height and width must be multiples of 4, got {crop}")
    if model.POS_TABLE_SIZE and len(model.POS_TABLE_SIZE) != 2:
        _reject("MODEL.POS_TABLE_SIZE", f"expected [rows, cols] (or null: from the checkpoint or the crop), "
                                        f"got {model.POS_TABLE_SIZE}")
    if model.HIDDEN_DIM % model.TRANSFORMER.NHEAD:
        _reject("MODEL.HIDDEN_DIM", f"{model.HIDDEN_DIM} must be a multiple of MODEL.TRANSFORMER.NHEAD "
                                    f"({model.TRANSFORMER.NHEAD})")
    if model.READOUT_PREVIOUS_FRAME and model.LABEL_READOUT != "features":
        _reject("MODEL.READOUT_PREVIOUS_FRAME", f"needs MODEL.LABEL_READOUT features, got {model.LABEL_READOUT!r}")
    if model.HIDDEN_DIM % 32:
        _reject("MODEL.HIDDEN_DIM", f"{model.HIDDEN_DIM} must be a multiple of 32 (the bottleneck's GroupNorm)")
    _check_mix_weights("DATASETS.SAMPLE_PROBABILITY", data.SAMPLE_PROBABILITY)
    if data.WARMUP_EPOCHS > 0:
        _check_mix_weights("DATASETS.WARMUP_SAMPLE_PROBABILITY", data.WARMUP_SAMPLE_PROBABILITY)
    if data.YTB.CLIP_LENGTH != data.DAVIS.CLIP_LENGTH:
        _reject("DATASETS.DAVIS.CLIP_LENGTH", f"{data.DAVIS.CLIP_LENGTH} must equal DATASETS.YTB.CLIP_LENGTH "
                                              f"({data.YTB.CLIP_LENGTH}) to batch clips of both together")
    if not data.COCOS.AFFINE_RANGE:
        _reject("DATASETS.COCOS.AFFINE_RANGE", "needs at least one divisor, got []")


def check_values(cfg: Config) -> None:
    """Every key inside its range or choices, and the keys that go together consistent."""
    _check_ranges(cfg)
    _check_combinations(cfg)


def check_config(cfg: Config) -> None:
    """Every check on ``cfg``'s values: the compatibility-only keys, then :func:`check_values`; a
    ConfigError naming the first key that fails, before anything is built from the config."""
    check_compat_values(cfg)
    check_values(cfg)
