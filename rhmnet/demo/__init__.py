"""The CPU demo (``rhmnet-demo``, ``python -m rhmnet.demo``): it trains RHMNet-Lite from scribbles on synthetic and real
DAVIS-layout videos and scores it against two baselines on held-out videos.

- :mod:`~rhmnet.demo.data`: the training data and the evaluation video sets;
- :mod:`~rhmnet.demo.training`: the training run;
- :mod:`~rhmnet.demo.baselines`: the dilated-scribble and training-free kNN baselines;
- :mod:`~rhmnet.demo.scoring`: the methods on the evaluation videos, overlay GIFs, J&F (:class:`Scores`);
- :mod:`~rhmnet.demo.report`: ``results.md`` and ``results.json``;
- :mod:`~rhmnet.demo.cli`: the command line (shared options with ``scripts/learning_curve.py``) and the run.
"""

from rhmnet.demo.baselines import KnnPropagation, dilated_scribble_baseline
from rhmnet.demo.cli import (
    add_run_arguments,
    build_parser,
    check_run_arguments,
    default_shared,
    main,
    real_video_notice,
    run_demo,
)
from rhmnet.demo.data import (
    DAVIS_SET,
    SYNTHETIC_SET,
    EvalVideo,
    HeldOut,
    TrainingData,
    build_training_data,
    check_unseen,
    davis_sample,
    davis_val_videos,
    davis_videos,
    held_out_sets,
    held_out_videos,
    prepare_davis_training,
    synthetic_videos,
    training_davis_roots,
)
from rhmnet.demo.report import DemoResults
from rhmnet.demo.scoring import (
    DILATED_ROW,
    KNN_ROW,
    MODEL_ROW,
    Scores,
    run_baselines,
    run_methods,
    score_model,
    segment_frames_to_pngs,
)
from rhmnet.demo.training import train

__all__ = [
    "DAVIS_SET",
    "DILATED_ROW",
    "KNN_ROW",
    "MODEL_ROW",
    "SYNTHETIC_SET",
    "DemoResults",
    "EvalVideo",
    "HeldOut",
    "KnnPropagation",
    "Scores",
    "TrainingData",
    "add_run_arguments",
    "build_parser",
    "build_training_data",
    "check_run_arguments",
    "check_unseen",
    "davis_sample",
    "davis_val_videos",
    "davis_videos",
    "default_shared",
    "dilated_scribble_baseline",
    "held_out_sets",
    "held_out_videos",
    "main",
    "prepare_davis_training",
    "real_video_notice",
    "run_baselines",
    "run_demo",
    "run_methods",
    "score_model",
    "segment_frames_to_pngs",
    "synthetic_videos",
    "train",
    "training_davis_roots",
]
