"""Typed config: named YAML files, KEY=value overrides, clear errors."""

from __future__ import annotations

import re

import pytest

from rhmnet.config import ConfigError, config_from_dict, load_config


def test_named_configs_carry_the_authors_settings():
    video = load_config("video_training")
    assert video.NAME == "video_training"
    assert video.MODEL.REFINE_LAYERS == 1 and video.MODEL.TRANSFORMER.REFINE_THRESHOLD == [0.65, 0.95]
    assert video.TRAIN.LR == 1e-4 and video.TRAIN.LOSS.CONSISTENCY.WEIGHT == 20.0
    assert video.TEST.MAX_MEMORY_LENGTH == 4 and video.TEST.REQUIRE_LAST_SCRIBBLE is True
    pre = load_config("pre_training")
    assert pre.TRAIN.LR == 5e-5 and pre.TRAIN.LOSS.SCRIBBLE_LOSS.ALPHA == 0.35
    assert pre.TRAIN.LOSS.CONSISTENCY.WEIGHT == 0.0


def test_overrides_are_typed():
    cfg = load_config("video_training", ["TRAIN.LR=3e-4", "DATASETS.CROP_SIZE=[96, 96]", "TEST.REQUIRE_LAST=true"])
    assert cfg.TRAIN.LR == 3e-4 and cfg.DATASETS.CROP_SIZE == [96, 96] and cfg.TEST.REQUIRE_LAST is True
    assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("TRAIN.NOPE=1", "unknown config key: TRAIN.NOPE"),
        ("TRAIN.EPOCH=abc", "TRAIN.EPOCH: expected an integer"),
        ("TRAIN.LR", "KEY=value"),
        ("MODEL.HIDDEN_DIM=true", "MODEL.HIDDEN_DIM: expected an integer"),
        ("TRAIN.BATCH_SIZE=0", "TRAIN.BATCH_SIZE: must be in [1, inf), got 0"),
        ("TRAIN.EPOCH=0", "TRAIN.EPOCH: must be in [1, inf), got 0"),
        ("DATASETS.CROP_SIZE=[64]", "DATASETS.CROP_SIZE: expected [height, width], each >= 16, got [64]"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("video_training", [override])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("TRAIN.OPTIMIZER=SGD", "TRAIN.OPTIMIZER: must be one of AdamW, Adam, got 'SGD'"),
        ("TRAIN.LR_SCHEDULE=cosine", "TRAIN.LR_SCHEDULE: must be one of auto, poly, step, got 'cosine'"),
        ("TRAIN.LR_DECREASE_STEP=0", "TRAIN.LR_DECREASE_STEP: must be in [1, inf), got 0"),
        ("TRAIN.STEP_SIZE=0", "TRAIN.STEP_SIZE: must be in [1, inf), got 0"),
        ("TRAIN.ACCUMULATE_STEPS=0", "TRAIN.ACCUMULATE_STEPS: must be in [1, inf), got 0"),
        ("TRAIN.EMA_DECAY=1", "TRAIN.EMA_DECAY: must be in [0, 1), got 1.0"),
        ("TRAIN.SAMPLES_PER_EPOCH=0", "TRAIN.SAMPLES_PER_EPOCH: must be in [1, inf), got 0"),
        ("MODEL.TRANSFORMER.ACTIVATION=tanh", "MODEL.TRANSFORMER.ACTIVATION: must be one of relu, gelu, got 'tanh'"),
        ("MODEL.POS_TABLE_SIZE=[4]", "MODEL.POS_TABLE_SIZE: expected [rows, cols]"),
        ("MODEL.POS_TABLE_SIZE=[4,0]", "MODEL.POS_TABLE_SIZE[1]: must be in [1, inf), got 0"),
        ("MODEL.ATTACH.LOCAL_SIMILARITY=true", "MODEL.ATTACH.LOCAL_SIMILARITY: value True is not implemented"),
        ("DATASETS.MAX_OBJECT_NUM=11", "DATASETS.MAX_OBJECT_NUM: must be in [1, 10], got 11"),
        ("DATASETS.CROP_SIZE=[98,96]", "DATASETS.CROP_SIZE: height and width must be multiples of 4, got [98, 96]"),
        ("DATASETS.SAMPLE_PROBABILITY=[0,0]", "DATASETS.SAMPLE_PROBABILITY: must give two [YouTube-VOS, DAVIS]"),
        ("DATASETS.SAMPLE_PROBABILITY=[1,1,1]", "DATASETS.SAMPLE_PROBABILITY: must give two [YouTube-VOS, DAVIS]"),
        ("DATASETS.WARMUP_EPOCHS=1", "DATASETS.WARMUP_SAMPLE_PROBABILITY: must give two [YouTube-VOS, DAVIS]"),
        ("DATASETS.MOSAIC_PROBABILITY=1.5", "DATASETS.MOSAIC_PROBABILITY: must be in [0, 1], got 1.5"),
        ("DATASETS.DAVIS.CLIP_LENGTH=4", "DATASETS.DAVIS.CLIP_LENGTH: 4 must equal DATASETS.YTB.CLIP_LENGTH (3)"),
        ("DATASETS.COCOS.TRANSFORM_MODE=shear",
         "DATASETS.COCOS.TRANSFORM_MODE: must be one of perspective, affine, got 'shear'"),
        ("DATASETS.COCOS.AFFINE_RANGE=[6,0,8]", "DATASETS.COCOS.AFFINE_RANGE[1]: must be in (0, inf), got 0"),
        ("DATASETS.COCOS.AFFINE_RANGE=[]", "DATASETS.COCOS.AFFINE_RANGE: needs at least one divisor"),
    ],
)
def test_values_used_by_training_and_the_model_are_checked_at_load(override, message):
    """Every check on a config value runs when the config loads, from a file or from a checkpoint's dict,
    in one line naming the key, the value and what is allowed."""
    with pytest.raises(ConfigError) as error:
        load_config("video_training", [override])
    assert f"config key {message}" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict(load_config("video_training").to_dict(), [override])


def test_valid_values_still_load():
    cfg = load_config("video_training", ["TRAIN.OPTIMIZER=Adam", "MODEL.POS_TABLE_SIZE=[4,5]",
                                         "DATASETS.WARMUP_EPOCHS=1", "DATASETS.WARMUP_SAMPLE_PROBABILITY=[0,1]",
                                         "DATASETS.YTB.CLIP_LENGTH=4", "DATASETS.DAVIS.CLIP_LENGTH=4"])
    assert cfg.TRAIN.OPTIMIZER == "Adam" and cfg.MODEL.POS_TABLE_SIZE == [4, 5]
    assert load_config("video_training", ["MODEL.POS_TABLE_SIZE=null"]).MODEL.POS_TABLE_SIZE is None


def test_unknown_key_in_a_yaml_file_names_file_and_key(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("MODEL:\n  BACKBONE:\n    DEPTH: 50\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml: unknown config key: MODEL\.BACKBONE\.DEPTH"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config("no_such_config")


def test_base_inheritance_applies_the_base_then_the_differences(tmp_path):
    (tmp_path / "parent.yaml").write_text("BASE: video_training\nTRAIN:\n  LR: 2.0e-4\n  EPOCH: 7\n")
    child = tmp_path / "child.yaml"
    child.write_text("BASE: parent.yaml\nTRAIN:\n  EPOCH: 3\n")
    cfg = load_config(child)
    paper = load_config("video_training")
    assert cfg.NAME == "child"  # the file's own name, not the base's
    assert cfg.TRAIN.EPOCH == 3 and cfg.TRAIN.LR == 2e-4  # the child wins over its parent
    assert cfg.MODEL == paper.MODEL and cfg.TEST == paper.TEST  # everything else comes from video_training
    assert "BASE" not in cfg.to_dict()


def test_base_cycles_and_bad_bases_are_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("BASE: b.yaml\n")
    (tmp_path / "b.yaml").write_text("BASE: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("BASE: [video_training, small_synthetic]\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: BASE must name one config"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("BASE: no_such_base\n")
    with pytest.raises(ConfigError, match="no_such_base.*not found"):
        load_config(tmp_path / "d.yaml")


def test_typed_defaults_are_the_papers_video_training_experiment():
    from rhmnet.config import Config

    paper = load_config("video_training").to_dict()
    defaults = Config().to_dict()
    for key in ("NAME", "RESUME"):
        paper.pop(key), defaults.pop(key)
    assert defaults == paper


def test_a_file_without_base_reads_as_the_authors_format(tmp_path):
    """Their experiment files are differences from their configs/default.py, not from our defaults."""
    path = tmp_path / "theirs.yaml"
    path.write_text("TRAIN:\n  EPOCH: 5\n")
    cfg = load_config(path)
    assert cfg.TRAIN.EPOCH == 5
    authors = load_config("authors_default")
    assert cfg.MODEL == authors.MODEL and cfg.MODEL.REFINE_LAYERS == 2  # the authors' default, not the paper's
    assert load_config("small_synthetic").MODEL.REFINE_LAYERS == 1  # BASE: video_training
