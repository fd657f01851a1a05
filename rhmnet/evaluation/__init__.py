"""Evaluation: DAVIS J&F (identical to the official toolkit; :mod:`rhmnet.evaluation.davis_scoring`), DAVIS and
YouTube-VOS runners.

Entry points: ``rhmnet-eval-davis`` / ``eval_davis.py`` (:mod:`rhmnet.evaluation.davis`), ``rhmnet-eval-ytb`` /
``eval_ytb.py`` (:mod:`rhmnet.evaluation.youtube`) and ``rhmnet-segment``.
"""

from rhmnet.evaluation.davis_scoring import DavisResult, EvaluationError, evaluate_results, write_csvs
from rhmnet.evaluation.metrics import boundary_f, db_statistics, jaccard, object_scores, seg2bmap

__all__ = [
    "DavisResult",
    "EvaluationError",
    "boundary_f",
    "db_statistics",
    "evaluate_results",
    "jaccard",
    "object_scores",
    "seg2bmap",
    "write_csvs",
]
