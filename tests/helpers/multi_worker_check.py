"""One worker of a 2-worker MultiWorkerMirroredStrategy run (TF_CONFIG set by the test)."""
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import fakes  # noqa: E402
from t2t_lite.training import Trainer, create_strategy  # noqa: E402

fakes.register()
strategy = create_strategy("auto")
assert isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy), type(strategy)
trainer = Trainer(fakes.FakeReverseProblem(), "fake_seq_model",
                  fakes.hparams(batch_size=4), None, sys.argv[1], 4, strategy=strategy,
                  random_seed=5, log_step_count_steps=2, save_checkpoints_steps=0)
trainer.train()
np.save(sys.argv[2], np.concatenate([v.numpy().ravel() for v in trainer.model.weights]))
