"""MirroredStrategy over 2 logical CPUs gives the same loss and weights as 1 device (and the
same moving average of the weights, which the evaluation reads).

Run as a script: logical devices must be set before TensorFlow starts."""
import os
import sys

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
tf.config.experimental.enable_op_determinism()

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import fakes  # noqa: E402
from t2t_lite.training import Trainer  # noqa: E402
from t2t_lite.training import optimizers  # noqa: E402

fakes.register()
out = sys.argv[1]


def run(strategy, name, per_replica_batch):
  hp = fakes.hparams(batch_size=per_replica_batch, dropout=0.0, ema_momentum=0.5)
  problem = fakes.FakeReverseProblem()
  # Both runs see the same global batches: shuffle off, so batch k holds the same examples.
  original = problem.dataset

  def no_shuffle(mode, data_dir, hparams=None, shuffle=None, seed=None, input_context=None):
    ds = original("eval", data_dir, hparams, input_context=None).unbatch()
    if input_context is not None and input_context.num_replicas_in_sync > 1:
      # Global batch of 8 split into two per-replica halves, in order.
      ds = ds.batch(8, drop_remainder=True).repeat()
      index = input_context.input_pipeline_id
      # Each pipeline serves every replica of its worker: here one worker, two replicas.
      return ds.unbatch().batch(per_replica_batch, drop_remainder=True)
    return ds.batch(8, drop_remainder=True).repeat()

  problem.dataset = no_shuffle
  trainer = Trainer(problem, "fake_seq_model", hp, None, os.path.join(out, name), 6,
                    strategy=strategy, random_seed=7, log_step_count_steps=3)
  trainer.train()
  loss = trainer.evaluate(2)["loss"]
  averages = [v.numpy() for v in optimizers.moving_averages(trainer.optimizer)]
  return loss, [v.numpy() for v in trainer.model.weights] + averages


one = run(tf.distribute.OneDeviceStrategy("/cpu:0"), "one", 8)
two = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), "two", 4)
assert abs(one[0] - two[0]) < 1e-5, (one[0], two[0])
assert len(one[1]) == len(two[1])
# Equal up to float summation order (gradients summed across replicas in another order).
for a, b in zip(one[1], two[1]):
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
print("MIRRORED_MATCH")
