"""The authors' compatibility rules: what lets their experiment files load unchanged.

- A config file without ``BASE`` is read as their experiment files are written: on top of their
  ``configs/default.py``, whose differences from our defaults are ``configs/authors_default.yaml``
  (:data:`AUTHORS_DEFAULT`; the loader applies it).
- Keys kept only for their files (:data:`COMPAT_ONLY_VALUES`) accept the value their experiments use and
  reject any other (:func:`check_compat_values`, part of the checks run at load).
"""

from __future__ import annotations

from typing import Any

from rhmnet.config.schema import Config, ConfigError, value_at

AUTHORS_DEFAULT = "authors_default"  # configs/authors_default.yaml: the base of files without BASE

# Keys kept so that the authors' experiment files load unchanged, implemented for one value only: the
# value their experiments use (their defaults; none of their YAML files sets another). Any other value is
# rejected instead of being silently ignored.
COMPAT_ONLY_VALUES: dict[str, Any] = {
    "MODEL.TYPE": "TRANSFORMER",
    "MODEL.MAX_CAPACITY": 100,
    "MODEL.BACKBONE.VERSION": "v1",  # their "v2" (dilated) backbone is not implemented
    "MODEL.ATTACH.LOCAL_SIMILARITY": False,  # unused by the paper's experiments
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


def check_compat_values(cfg: Config) -> None:
    """A ConfigError naming the key when a compatibility-only key has a value that is not implemented."""
    for key, accepted in COMPAT_ONLY_VALUES.items():
        value = value_at(cfg, key)
        if value != accepted:
            raise ConfigError(
                f"config key {key}: value {value!r} is not implemented (only {accepted!r}, the value of the "
                f"authors' experiments, is supported)"
            )
