"""utils/moving_average.py: the optimizer's moving average of the weights, read back from a
training checkpoint without building the optimizer (tests/test_training.py covers a run)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from t2t_lite.hparams import HParams
from t2t_lite.training import optimizers
from t2t_lite.utils import moving_average


def _dense():
  model = keras.Sequential([keras.layers.Dense(3)])
  model.build((None, 2))
  return model


def _trained_checkpoint(path, loss_scaled, steps=3):
  """A model and optimizer after `steps` steps, saved as training/checkpoints.py saves them."""
  model = _dense()
  optimizer = optimizers.FusedAdam(learning_rate=0.1, use_ema=True, ema_momentum=0.5)
  if loss_scaled:  # as create_optimizer makes it for mixed_float16
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  optimizer.build(model.trainable_variables)
  for _ in range(steps):
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(model(tf.ones((1, 2))) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
  saved = tf.train.Checkpoint(model=model, optimizer=optimizer).write(str(path))
  return model, optimizer, saved


@pytest.mark.parametrize("loss_scaled", [False, True])
def test_load_ema_weights_writes_the_checkpointed_average(tmp_path, loss_scaled):
  model, optimizer, path = _trained_checkpoint(tmp_path / "ckpt", loss_scaled)
  averages = [a.numpy() for a in moving_average.moving_averages(optimizer)]
  assert any(not np.allclose(a, w.numpy()) for a, w in zip(averages, model.trainable_variables))
  restored = _dense()
  assert moving_average.load_ema_weights(HParams(ema_momentum=0.5), restored, path)
  for a, w in zip(averages, restored.trainable_variables):
    np.testing.assert_array_equal(a, w.numpy())


def test_load_ema_weights_leaves_the_weights_without_an_average(tmp_path):
  model, _, path = _trained_checkpoint(tmp_path / "ckpt", False)
  weights_only = tf.train.Checkpoint(model=model).write(str(tmp_path / "weights"))
  restored = _dense()
  before = [w.numpy() for w in restored.trainable_variables]
  # The set keeps no average; the checkpoint holds no optimizer (averaged, best/).
  assert not moving_average.load_ema_weights(HParams(ema_momentum=0.0), restored, path)
  assert not moving_average.load_ema_weights(HParams(ema_momentum=0.5), restored, weights_only)
  for b, w in zip(before, restored.trainable_variables):
    np.testing.assert_array_equal(b, w.numpy())


def test_moving_averages_is_none_before_the_first_step_or_without_use_ema():
  model = _dense()
  plain = keras.optimizers.Adam()
  plain.build(model.trainable_variables)
  assert moving_average.moving_averages(plain) is None
  ema = keras.optimizers.Adam(use_ema=True)
  ema.build(model.trainable_variables)
  assert moving_average.moving_averages(ema) is None
