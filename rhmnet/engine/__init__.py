"""Training engine shared by the pre-training and video-training scripts."""

from rhmnet.engine.distributed import DistContext, init_distributed
from rhmnet.engine.trainer import NonFiniteLossError, RunOptions, Trainer, TrainResult, run_training

__all__ = ["DistContext", "NonFiniteLossError", "RunOptions", "TrainResult", "Trainer", "init_distributed",
           "run_training"]
