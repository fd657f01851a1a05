"""Evaluation: DAVIS J&F (identical to the official toolkit), DAVIS / YouTube-VOS runners, speed meters.

Entry points: ``eval_davis.py`` (:mod:`rhmnet.evaluation.davis_run`), ``eval_ytb.py``
(:mod:`rhmnet.evaluation.youtube`) and ``python -m rhmnet.segment``.
"""

from rhmnet.evaluation.davis import DavisResult, EvaluationError, evaluate_results, write_csvs
from rhmnet.evaluation.metrics import boundary_f, db_statistics, jaccard, object_scores, seg2bmap
from rhmnet.evaluation.speed import SpeedMeter, VideoSpeed

__all__ = [
    "DavisResult",
    "EvaluationError",
    "SpeedMeter",
    "VideoSpeed",
    "boundary_f",
    "db_statistics",
    "evaluate_results",
    "jaccard",
    "object_scores",
    "seg2bmap",
    "write_csvs",
]
