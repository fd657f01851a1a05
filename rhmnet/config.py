"""Typed experiment configuration.

The defaults mirror the authors' ``configs/default.py`` (same upper-case key names, so their experiment
YAML files load unchanged); named experiments live in ``configs/<name>.yaml`` and are applied on top.
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

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
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
    USE_SIMILARITY: bool = False
    LOCAL_SIMILARITY: bool = False
    THRESHOLD_MEAN_FEAT: float = 0.211
    THRESHOLD_SOFT_LABEL: float = 0.15


@dataclass
class TransformerConfig:
    NHEAD: int = 8
    DIM_FEEDFORWARD: int = 1024
    DROPOUT: float = 0.1
    ACTIVATION: str = "relu"
    REFINE_THRESHOLD: list[float] = field(default_factory=lambda: [0.95, 0.9])
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
    WITH_REFINE: bool = True
    REFINE_LAYERS: int = 2
    OBJECT_THRESHOLD: float = 0.9
    DETACH_INTER_FRAME: bool = False
    USE_HR_LEVEL_EMBEDDING: bool = True
    POS_TABLE_SIZE: Optional[list[int]] = None  # rows, cols; default CROP_SIZE / TOTAL_STRIDE
    BACKBONE: BackboneConfig = field(default_factory=BackboneConfig)
    ATTACH: AttachConfig = field(default_factory=AttachConfig)
    TRANSFORMER: TransformerConfig = field(default_factory=TransformerConfig)
    DECODER: DecoderConfig = field(default_factory=DecoderConfig)
    SCRIBBLE_PREDICTOR: ScribblePredictorConfig = field(default_factory=ScribblePredictorConfig)


@dataclass
class CocoConfig:
    IMG_DIR: str = "/datasets/COCO/images"
    ANNO_DIR: str = "/datasets/COCO/scribbles_skeleton_category"
    JSON_PATH: str = "/datasets/COCO/COCO_skeleton_category.json"
    RANDOM_FLIP: bool = False
    TRANSFORM_MODE: str = "perspective"
    AFFINE_RANGE: list[int] = field(default_factory=lambda: [8, 8, 8])
    CLIP_LENGTH: int = 4
    ADDITIONAL_BG: bool = False


@dataclass
class YtbConfig:
    ROOT: str = "/datasets/Youtube-VOS"
    CLIP_LENGTH: int = 4
    RANDOM_FLIP: bool = False
    ADDITIONAL_BG: bool = False


@dataclass
class DavisConfig:
    PATH: str = "/datasets/DAVIS"
    CLIP_LENGTH: int = 4
    RANDOM_FLIP: bool = False
    ADDITIONAL_BG: bool = False


@dataclass
class DatasetsConfig:
    MEMORY_BG: bool = True
    MINIMUM_AREA: int = 100
    ERODE: bool = False
    MAX_OBJECT_NUM: int = 3
    DILATE_KERNEL_SIZE: int = 19
    CROP_SIZE: list[int] = field(default_factory=lambda: [384, 384])
    SAMPLE_PROBABILITY: list[float] = field(default_factory=lambda: [1, 1])
    BIDIRECTION: bool = False
    VIDEO_TEMPORAL_FLIP: bool = False
    RESIZE_SHORT_SIDE: int = 480
    COCOS: CocoConfig = field(default_factory=CocoConfig)
    YTB: YtbConfig = field(default_factory=YtbConfig)
    DAVIS: DavisConfig = field(default_factory=DavisConfig)


@dataclass
class MaskLossConfig:
    WEIGHT: float = 2.0
    BG_WEIGHT: float = 1.0


@dataclass
class SmoothLossConfig:
    ALPHA: float = 10.0
    WITH_SCRIBBLE: bool = False
    WEIGHT: float = 0.3


@dataclass
class ConsistencyLossConfig:
    WEIGHT: float = 0.0


@dataclass
class ScribbleLossConfig:
    USE_FOCAL_LOSS: bool = True
    ALPHA: float = 0.25
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
    EPOCH: int = 12
    LR: float = 5e-5
    BACKBONE_MULTIPLIER: float = 0.2
    DEEP_SUPERVISION: bool = True
    WEIGHT_DECAY: float = 0.0001
    STEP_SIZE: int = 6
    MAX_SKIP: int = 25
    INIT_SKIP: int = 0
    SKIP_INCREASE_STEP: int = 1000
    LR_DECREASE_STEP: int = 1000
    SAMPLES_PER_EPOCH: int = 10000
    LR_SCHEDULE: str = "step"  # "step" (pre-training, StepLR) or "poly" (video stage)
    AMP: bool = False  # mixed precision on CUDA only
    GRAD_CLIP: float = 0.0  # 0 disables clipping
    SEED: int = 0
    LOG_INTERVAL: int = 10
    CHECKPOINT_DIR: str = "checkpoints"
    TENSORBOARD: bool = False
    LOSS: LossConfig = field(default_factory=LossConfig)


@dataclass
class TestConfig:
    USING_INITIAL_BG: bool = True
    REQUIRE_LAST: bool = False
    REQUIRE_LAST_SCRIBBLE: bool = False
    MAX_MEMORY_LENGTH: int = 20
    UPDATE_FREQUENCY: int = 5
    SCRIBBLE_UPDATE_FREQUENCY: int = 5
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


def load_config(name_or_path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Default config, then the named/pathed YAML file, then ``KEY=value`` overrides."""
    cfg = Config()
    if name_or_path is not None:
        path = resolve_config_path(name_or_path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        try:
            merge_dict(cfg, data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        cfg.NAME = path.stem if "NAME" not in data else cfg.NAME
    merge_dict(cfg, parse_overrides(overrides))
    return cfg


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a config saved with :meth:`Config.to_dict` (e.g. inside a checkpoint)."""
    cfg = Config()
    merge_dict(cfg, data)
    return cfg
