"""The supervised training loop: Trainer, train_supervised, optimizers, metrics, strategies."""
from t2t_lite.training.distribute import create_strategy
from t2t_lite.training.trainer import SCHEDULES, Trainer, TrainingDivergedError, train_supervised

__all__ = ["SCHEDULES", "Trainer", "TrainingDivergedError", "create_strategy",
           "train_supervised"]
