"""The typed experiment configuration: every key, its type and its default.

The defaults (:class:`Config`) are the paper's video-training experiment, with the authors' key names.
Reading files and overrides into it: :mod:`rhmnet.config.loader`; the checks on its values, run at load:
:mod:`rhmnet.config.checks`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from rhmnet.errors import RHMNetError


class ConfigError(RHMNetError, ValueError):
    """Raised for unknown keys, wrong value types or values, or missing config files."""


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
    # features readout only: the previous frame's confident predictions join the annotated frames' labelled cells
    READOUT_PREVIOUS_FRAME: bool = False
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


def value_at(cfg: Any, key: str) -> Any:
    """The value of the dotted ``key`` (e.g. ``"TRAIN.LR"``) in ``cfg``."""
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg
