"""Typed experiment configuration.

The typed defaults (:class:`Config`) are the paper's video-training experiment, with the authors' key names.
Named experiments live in ``configs/<name>.yaml``. A file that names a ``BASE`` (a named config or a path)
lists only its differences from it. A file without ``BASE`` is read as the authors' experiment files are
written: on top of their ``configs/default.py`` (``configs/authors_default.yaml`` holds where that differs
from our defaults), so their YAML files load unchanged and, with ``TRAIN.LR_SCHEDULE: auto``, train with
their scripts' schedules. Keys kept only for their files (:data:`COMPAT_ONLY_VALUES`) accept the value
their experiments use and reject any other.
Command-line overrides use dotted ``KEY=value`` pairs, e.g. ``TRAIN.LR=1e-4 MODEL.HIDDEN_DIM=128``.
Unknown keys are errors that name the offending key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from rhmnet.errors import RHMNetError
from rhmnet.labels import MAX_OBJECTS
from rhmnet.ranges import AT_LEAST_0, AT_LEAST_1, POSITIVE, UNIT, UNIT_OPEN_TOP, Range


def _find_config_dir() -> Path:
    """The named experiment YAMLs: ``rhmnet/configs`` in an installed wheel, ``configs/`` in a checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "configs", package.parent / "configs"):
        if candidate.is_dir():
            return candidate
    return package.parent / "configs"


CONFIG_DIR = _find_config_dir()
AUTHORS_DEFAULT = "authors_default"  # configs/authors_default.yaml: the base of files without BASE


class ConfigError(RHMNetError, ValueError):
    """Raised for unknown keys, wrong value types or missing config files."""


@dataclass
class BackboneConfig:
    NAME: str = "resnet50"  # resnet50 (paper), resnet34 / resnet18, efficientnet_lite0, or a timm model name
    VERSION: str = "v1"
    FROZEN: bool = False  # run the backbone without gradients
    BN_FROZEN: bool = True  # frozen batch norm (always true in the paper)
    PRETRAINED: bool = True  # start from ImageNet weights when building a fresh model
    WEIGHTS_PATH: Optional[str] = None  # local state dict (torchvision ResNet / timm names); no download needed
    FROZEN_STAGES: int = 0  # stem + first stages whose weights stay fixed (0: train all; BN statistics: BN_FROZEN)


@dataclass
class AttachConfig:
    USE_SIMILARITY: bool = True
    LOCAL_SIMILARITY: bool = False
    THRESHOLD_MEAN_FEAT: float = 0.211
    THRESHOLD_SOFT_LABEL: float = 0.15


@dataclass
class TransformerConfig:
    NHEAD: int = 8
    DIM_FEEDFORWARD: int = 1024
    DROPOUT: float = 0.1
    ACTIVATION: str = "relu"
    REFINE_THRESHOLD: list[float] = field(default_factory=lambda: [0.65, 0.95])
    DETACH_INTER_LAYER: bool = False
    USE_POS_EMBEDDING: bool = True
    USING_SCRIBBLE_MEM_FOR_MASK: bool = False


@dataclass
class DecoderConfig:
    UPSAMPLE_LOGITS: bool = True
    OUT_DIM: int = 2
    SHORTCUT_DIMS: list[int] = field(default_factory=lambda: [256, 512, 1024])
    ALIGN_CORNER: bool = True
    NORM: str = "gn"
    PRED_EDGE: bool = False


@dataclass
class ScribblePredictorConfig:
    OUT_DIM: int = 1
    LAYERS: int = 3
    NORM: str = "gn"


@dataclass
class ModelConfig:
    TYPE: str = "TRANSFORMER"
    HIDDEN_DIM: int = 256
    BG_PROTOTYPE: bool = True
    MAX_CAPACITY: int = 100
    TOTAL_STRIDE: int = 16
    WITH_REFINE: bool = False
    REFINE_LAYERS: int = 1
    OBJECT_THRESHOLD: float = 0.95
    DETACH_INTER_FRAME: bool = False
    USE_HR_LEVEL_EMBEDDING: bool = True
    # label readout (not in the paper), none | attention | features: every decoder layer adds a learned projection
    # of the share of "this object" among the labels read from memory; attention: memory values carry each cell's
    # own / other labels, read with the cross-attention's weights; features: a kNN vote of the annotated frames'
    # scribbled cells on fixed backbone features, also added to the heads' logits (docs/generalisation.md)
    LABEL_READOUT: str = "none"
    # rows, cols of the position table; None: from the checkpoint being loaded, else CROP_SIZE / TOTAL_STRIDE.
    # A built model stores the resolved size in its config (and so in its checkpoints).
    POS_TABLE_SIZE: Optional[list[int]] = None
    BACKBONE: BackboneConfig = field(default_factory=BackboneConfig)
    ATTACH: AttachConfig = field(default_factory=AttachConfig)
    TRANSFORMER: TransformerConfig = field(default_factory=TransformerConfig)
    DECODER: DecoderConfig = field(default_factory=DecoderConfig)
    SCRIBBLE_PREDICTOR: ScribblePredictorConfig = field(default_factory=ScribblePredictorConfig)


@dataclass
class CocoConfig:
    IMG_DIR: str = "/datasets/COCO/images"
    ANNO_DIR: str = "/datasets/COCO/scribbles"
    JSON_PATH: str = "/datasets/COCO/COCO_scribbles.json"
    RANDOM_FLIP: bool = False
    TRANSFORM_MODE: str = "perspective"
    AFFINE_RANGE: list[int] = field(default_factory=lambda: [6, 8, 8])
    CLIP_LENGTH: int = 3
    ADDITIONAL_BG: bool = True


@dataclass
class YtbConfig:
    ROOT: str = "/datasets/Youtube-VOS"
    CLIP_LENGTH: int = 3
    RANDOM_FLIP: bool = False
    ADDITIONAL_BG: bool = True


@dataclass
class DavisConfig:
    PATH: str = "/datasets/DAVIS"
    CLIP_LENGTH: int = 3
    RANDOM_FLIP: bool = False
    ADDITIONAL_BG: bool = True


@dataclass
class DatasetsConfig:
    MEMORY_BG: bool = True
    MINIMUM_AREA: int = 100
    ERODE: bool = False
    MAX_OBJECT_NUM: int = 3
    DILATE_KERNEL_SIZE: int = 35
    CROP_SIZE: list[int] = field(default_factory=lambda: [384, 384])
    SAMPLE_PROBABILITY: list[float] = field(default_factory=lambda: [92, 8])
    BIDIRECTION: bool = False
    VIDEO_TEMPORAL_FLIP: bool = True
    MOSAIC_PROBABILITY: float = 0.0  # share of video clips made of two videos side by side (not in the paper)
    # a warm-up mix (not in the paper): the first WARMUP_EPOCHS epochs draw [YouTube-VOS, DAVIS] by these
    # weights instead of SAMPLE_PROBABILITY
    WARMUP_EPOCHS: int = 0
    WARMUP_SAMPLE_PROBABILITY: list[float] = field(default_factory=list)
    # object pasting (not in the paper): this share of the video clips get objects cut out with their masks
    # from other videos of the same dataset pasted in front (rhmnet.data.composition), up to
    # PASTE_MAX_OBJECTS of them; needs the datasets' dense masks (Annotations)
    PASTE_OBJECTS_PROBABILITY: float = 0.0
    PASTE_MAX_OBJECTS: int = 2
    RESIZE_SHORT_SIDE: int = 480
    COCOS: CocoConfig = field(default_factory=CocoConfig)
    YTB: YtbConfig = field(default_factory=YtbConfig)
    DAVIS: DavisConfig = field(default_factory=DavisConfig)


@dataclass
class MaskLossConfig:
    WEIGHT: float = 1.0
    BG_WEIGHT: float = 2.0


@dataclass
class SmoothLossConfig:
    ALPHA: float = 10.0
    WITH_SCRIBBLE: bool = False
    WEIGHT: float = 0.3


@dataclass
class ConsistencyLossConfig:
    WEIGHT: float = 20.0


@dataclass
class ScribbleLossConfig:
    USE_FOCAL_LOSS: bool = True
    ALPHA: float = 0.5
    GAMMA: float = 2.0
    WEIGHT: float = 1.0


@dataclass
class LossConfig:
    MASK: MaskLossConfig = field(default_factory=MaskLossConfig)
    SMOOTH: SmoothLossConfig = field(default_factory=SmoothLossConfig)
    CONSISTENCY: ConsistencyLossConfig = field(default_factory=ConsistencyLossConfig)
    SCRIBBLE_LOSS: ScribbleLossConfig = field(default_factory=ScribbleLossConfig)


@dataclass
class TrainConfig:
    NUM_WORKERS: int = 8
    PIN_MEMORY: bool = True
    BATCH_SIZE: int = 4
    MODE: str = "clip"
    OPTIMIZER: str = "AdamW"
    EPOCH: int = 80
    LR: float = 1e-4
    BACKBONE_MULTIPLIER: float = 0.5
    DEEP_SUPERVISION: bool = True
    WEIGHT_DECAY: float = 0.0001
    STEP_SIZE: int = 6
    MAX_SKIP: int = 30
    INIT_SKIP: int = 0
    SKIP_INCREASE_STEP: int = 1500
    LR_DECREASE_STEP: int = 1000
    SAMPLES_PER_EPOCH: int = 10000
    # "auto": as the authors' scripts, poly for the video stage and StepLR for pre-training; or "poly" / "step"
    LR_SCHEDULE: str = "auto"
    ACCUMULATE_STEPS: int = 1  # micro-batches per optimiser step (fewer GPUs, same global batch and schedule)
    AMP: bool = False  # mixed precision on CUDA only
    GRAD_CLIP: float = 0.0  # 0 disables clipping
    EMA_DECAY: float = 0.0  # > 0: checkpoints' model is an exponential moving average of the weights (not in the paper)
    SEED: int = 0
    LOG_INTERVAL: int = 10
    CHECKPOINT_DIR: str = "checkpoints"
    TENSORBOARD: bool = False
    LOSS: LossConfig = field(default_factory=LossConfig)


@dataclass
class TestConfig:
    """Inference: the memory policy (what is stored, how often, how much) and the working resolution."""

    USING_INITIAL_BG: bool = True
    REQUIRE_LAST: bool = False
    REQUIRE_LAST_SCRIBBLE: bool = True
    MAX_MEMORY_LENGTH: int = 4
    UPDATE_FREQUENCY: int = 6
    SCRIBBLE_UPDATE_FREQUENCY: int = 6
    INPUT_SHORT_SIDE: int = 0  # 0: segment frames at their own size; else resized to this short side (and back)


@dataclass
class Config:
    """The whole experiment configuration (model, data, training and test settings)."""

    RESUME: Optional[str] = None
    NAME: str = "default"
    MODEL: ModelConfig = field(default_factory=ModelConfig)
    DATASETS: DatasetsConfig = field(default_factory=DatasetsConfig)
    TRAIN: TrainConfig = field(default_factory=TrainConfig)
    TEST: TestConfig = field(default_factory=TestConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/checkpoint friendly)."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        """Write the resolved config as YAML."""
        Path(path).write_text(self.to_yaml())


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a dataclass field annotation, converting ints to floats where needed."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"config key {key}: expected a list, got {value!r}")
        return [_coerce(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {key}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {key}: expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {key}: expected true/false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {key}: expected a string, got {value!r}")
        return value
    return value


def merge_dict(cfg: Any, updates: dict[str, Any], prefix: str = "") -> None:
    """Recursively apply ``updates`` (nested dict) to the dataclass ``cfg`` in place."""
    if not isinstance(updates, dict):
        raise ConfigError(f"config section {prefix or '<root>'} must be a mapping, got {updates!r}")
    types_ = _field_types(type(cfg))
    for key, value in updates.items():
        full = f"{prefix}{key}"
        if key not in types_:
            raise ConfigError(f"unknown config key: {full}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            merge_dict(current, value, prefix=f"{full}.")
        else:
            setattr(cfg, key, _coerce(value, types_[key], full))


def parse_overrides(overrides: list[str] | None) -> dict[str, Any]:
    """Turn ``["A.B=1", "C=x"]`` into a nested dict; values are parsed as YAML scalars/lists."""
    nested: dict[str, Any] = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form KEY=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def resolve_config_path(name_or_path: str | Path) -> Path:
    """Find a config by name (``configs/<name>.yaml``) or by path."""
    path = Path(name_or_path)
    candidates = [path, CONFIG_DIR / f"{name_or_path}.yaml", CONFIG_DIR / str(name_or_path)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"config {str(name_or_path)!r} not found (known configs: {', '.join(known)})")


def _read_config_chain(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """``path``'s YAML preceded by the files it inherits from (``BASE: <name or path>``, base first)."""
    if path.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, path.resolve()))
        raise ConfigError(f"{path}: BASE forms a cycle ({chain})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys, got {type(data).__name__}")
    base = data.pop("BASE", None)
    if base is None:
        authors_default = CONFIG_DIR / f"{AUTHORS_DEFAULT}.yaml"
        if path.resolve() == authors_default.resolve():
            return [(path, data)]
        return [*_read_config_chain(authors_default, (*seen, path.resolve())), (path, data)]
    if not isinstance(base, str):
        raise ConfigError(f"{path}: BASE must name one config, got {base!r}")
    base_path = resolve_config_path(base if Path(base).is_absolute() else _relative_base(path, base))
    return [*_read_config_chain(base_path, (*seen, path.resolve())), (path, data)]


def _relative_base(path: Path, base: str) -> str:
    """A BASE given as a path is relative to the file naming it; a bare name is a named config."""
    sibling = path.parent / base
    return str(sibling) if sibling.is_file() else base


# Keys kept so that the authors' experiment files load unchanged, implemented for one value only: the
# value their experiments use (their defaults; none of their YAML files sets another). Any other value is
# rejected instead of being silently ignored.
COMPAT_ONLY_VALUES: dict[str, Any] = {
    "MODEL.TYPE": "TRANSFORMER",
    "MODEL.MAX_CAPACITY": 100,
    "MODEL.BACKBONE.VERSION": "v1",  # their "v2" (dilated) backbone is not implemented
    "MODEL.TRANSFORMER.DETACH_INTER_LAYER": False,
    "MODEL.DECODER.UPSAMPLE_LOGITS": True,
    "MODEL.DECODER.SHORTCUT_DIMS": [256, 512, 1024],  # ours follow the backbone's feature widths
    "MODEL.DECODER.ALIGN_CORNER": True,
    "MODEL.DECODER.NORM": "gn",
    "MODEL.DECODER.PRED_EDGE": False,
    "MODEL.SCRIBBLE_PREDICTOR.OUT_DIM": 1,
    "MODEL.SCRIBBLE_PREDICTOR.LAYERS": 3,
    "MODEL.SCRIBBLE_PREDICTOR.NORM": "gn",
    "DATASETS.ERODE": False,
    "TRAIN.MODE": "clip",
    "TRAIN.DEEP_SUPERVISION": True,  # False is not implemented (with REFINE_LAYERS=1 it changes nothing)
    "TRAIN.LOSS.SMOOTH.WITH_SCRIBBLE": False,
    "TRAIN.LOSS.SCRIBBLE_LOSS.USE_FOCAL_LOSS": True,  # the authors' code raises on False too
}


def _get(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def check_supported(cfg: Config) -> None:
    """Raise a ConfigError naming the key when a compatibility-only key has a value that is not
    implemented, or a value is outside what the code supports."""
    for key, accepted in COMPAT_ONLY_VALUES.items():
        value = _get(cfg, key)
        if value != accepted:
            raise ConfigError(
                f"config key {key}: value {value!r} is not implemented (only {accepted!r}, the value of the "
                f"authors' experiments, is supported)"
            )
    if cfg.TRAIN.LR_SCHEDULE not in ("auto", "poly", "step"):
        raise ConfigError(f"config key TRAIN.LR_SCHEDULE: {cfg.TRAIN.LR_SCHEDULE!r} is not one of auto, poly, step")
    if cfg.MODEL.LABEL_READOUT not in ("none", "attention", "features"):
        raise ConfigError(
            f"config key MODEL.LABEL_READOUT: {cfg.MODEL.LABEL_READOUT!r} is not one of none, attention, features"
        )


def load_config(name_or_path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Default config, then the named/pathed YAML file (after the files it inherits from through
    ``BASE:``), then ``KEY=value`` overrides. ``NAME`` defaults to the file's name."""
    cfg = Config()
    if name_or_path is not None:
        path = resolve_config_path(name_or_path)
        chain = _read_config_chain(path)
        for source, data in chain:
            try:
                merge_dict(cfg, data)
            except ConfigError as exc:
                raise ConfigError(f"{source}: {exc}") from None
        if "NAME" not in chain[-1][1]:  # a NAME inherited from a base file would mix two runs' folders
            cfg.NAME = path.stem
        try:
            check_supported(cfg)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    merge_dict(cfg, parse_overrides(overrides))
    check_supported(cfg)
    check_values(cfg)
    return cfg


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a config saved with :meth:`Config.to_dict` (e.g. inside a checkpoint)."""
    cfg = Config()
    merge_dict(cfg, data)
    check_supported(cfg)
    check_values(cfg)
    return cfg


# The valid range of every numeric key (a list key: of each of its items). Checked at load by check_values,
# the one place: code that uses a value relies on it being inside its range.
VALUE_RANGES: dict[str, Range] = {
    "MODEL.HIDDEN_DIM": AT_LEAST_1,
    "MODEL.REFINE_LAYERS": AT_LEAST_1,
    "MODEL.TOTAL_STRIDE": AT_LEAST_1,
    "MODEL.OBJECT_THRESHOLD": UNIT,
    "MODEL.BACKBONE.FROZEN_STAGES": AT_LEAST_0,
    "MODEL.ATTACH.THRESHOLD_MEAN_FEAT": UNIT,
    "MODEL.ATTACH.THRESHOLD_SOFT_LABEL": UNIT,
    "MODEL.TRANSFORMER.NHEAD": AT_LEAST_1,
    "MODEL.TRANSFORMER.DIM_FEEDFORWARD": AT_LEAST_1,
    "MODEL.TRANSFORMER.DROPOUT": UNIT_OPEN_TOP,
    "MODEL.TRANSFORMER.REFINE_THRESHOLD": UNIT,
    "DATASETS.MINIMUM_AREA": AT_LEAST_0,
    "DATASETS.MAX_OBJECT_NUM": AT_LEAST_1,
    "DATASETS.DILATE_KERNEL_SIZE": AT_LEAST_0,
    "DATASETS.CROP_SIZE": Range(16),
    "DATASETS.SAMPLE_PROBABILITY": AT_LEAST_0,
    "DATASETS.WARMUP_SAMPLE_PROBABILITY": AT_LEAST_0,
    "DATASETS.MOSAIC_PROBABILITY": UNIT,
    "DATASETS.WARMUP_EPOCHS": AT_LEAST_0,
    "DATASETS.PASTE_OBJECTS_PROBABILITY": UNIT,
    "DATASETS.PASTE_MAX_OBJECTS": Range(1, MAX_OBJECTS - 1),  # a clip keeps one object of its own
    "DATASETS.RESIZE_SHORT_SIDE": AT_LEAST_1,
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


def check_values(cfg: Config) -> None:
    """ConfigError naming the key and its valid range for a value outside :data:`VALUE_RANGES` (or of an
    inconsistent pair), before anything is built from it."""
    for key, valid in VALUE_RANGES.items():
        value = _get(cfg, key)
        for index, item in enumerate(value) if isinstance(value, list) else [(None, value)]:
            problem = valid.problem(item)
            if problem is not None:
                where = key if index is None else f"{key}[{index}]"
                raise ConfigError(f"config key {where}: {problem}")
    crop = cfg.DATASETS.CROP_SIZE
    if len(crop) != 2:
        raise ConfigError(f"config key DATASETS.CROP_SIZE: expected [height, width], each >= 16, got {crop}")
    if cfg.MODEL.HIDDEN_DIM % cfg.MODEL.TRANSFORMER.NHEAD:
        raise ConfigError(
            f"config key MODEL.HIDDEN_DIM: {cfg.MODEL.HIDDEN_DIM} must be a multiple of MODEL.TRANSFORMER.NHEAD "
            f"({cfg.MODEL.TRANSFORMER.NHEAD})"
        )
