"""Typed experiment configuration.

- :mod:`~rhmnet.config.schema`: the typed dataclasses (:class:`Config` and its sections) and their
  defaults, the paper's video-training experiment with the authors' key names.
- :mod:`~rhmnet.config.loader`: named YAML files (``configs/<name>.yaml``) with ``BASE:`` inheritance,
  ``KEY=value`` overrides, coercion to the schema's types (:func:`load_config`, :func:`config_from_dict`).
- :mod:`~rhmnet.config.compat`: the authors' compatibility rules (their files load unchanged).
- :mod:`~rhmnet.config.checks`: every check on a config value, run by the loader.
"""

from rhmnet.config.checks import VALUE_CHOICES, VALUE_RANGES, check_config, check_values
from rhmnet.config.compat import AUTHORS_DEFAULT, COMPAT_ONLY_VALUES, check_compat_values
from rhmnet.config.loader import (
    CONFIG_DIR,
    config_from_dict,
    load_config,
    merge_dict,
    parse_overrides,
    resolve_config_path,
)
from rhmnet.config.schema import (
    AttachConfig,
    BackboneConfig,
    CocoConfig,
    Config,
    ConfigError,
    ConsistencyLossConfig,
    DatasetsConfig,
    DavisConfig,
    DecoderConfig,
    LossConfig,
    MaskLossConfig,
    ModelConfig,
    ScribbleLossConfig,
    ScribblePredictorConfig,
    SmoothLossConfig,
    TestConfig,
    TrainConfig,
    TransformerConfig,
    YtbConfig,
    value_at,
)

__all__ = [
    "AUTHORS_DEFAULT", "COMPAT_ONLY_VALUES", "CONFIG_DIR", "VALUE_CHOICES", "VALUE_RANGES",
    "AttachConfig", "BackboneConfig", "CocoConfig", "Config", "ConfigError", "ConsistencyLossConfig",
    "DatasetsConfig", "DavisConfig", "DecoderConfig", "LossConfig", "MaskLossConfig", "ModelConfig",
    "ScribbleLossConfig", "ScribblePredictorConfig", "SmoothLossConfig", "TestConfig", "TrainConfig",
    "TransformerConfig", "YtbConfig",
    "check_compat_values", "check_config", "check_values", "config_from_dict", "load_config", "merge_dict",
    "parse_overrides", "resolve_config_path", "value_at",
]
