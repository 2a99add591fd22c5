"""The optimizer's exponential moving average of the weights (keras's `use_ema`): where keras
keeps it, and reading it back from a training checkpoint without building the optimizer.

Keras keeps the averages in the optimizer's `_model_variables_moving_average` (its own
SwapEMAWeights callback reads them there), one a trainable weight in the order the optimizer
was built with (None for a weight with `overwrite_with_gradient`), and counts the steps in
`_iterations`; a LossScaleOptimizer holds the optimizer that keeps them as `inner_optimizer`.
A training checkpoint saves the optimizer under `optimizer` (training/checkpoints.py).
"""
import tensorflow as tf

from t2t_lite import common_hparams

_CHECKPOINT_KEY = "optimizer"
_WRAPPED = "inner_optimizer"
_AVERAGES = "_model_variables_moving_average"
_ITERATIONS = "_iterations"


def moving_averages(optimizer):
  """The optimizer's moving averages of the weights it was built with (in that order), or
  None when it keeps none or has not taken a step yet (the averages are zeros until then)."""
  inner = getattr(optimizer, _WRAPPED, optimizer)  # under a LossScaleOptimizer
  if not getattr(inner, "use_ema", False) or int(inner.iterations.numpy()) == 0:
    return None
  return list(getattr(inner, _AVERAGES))


def _saved_under_wrapper(checkpoint_path):
  prefix = "%s/%s/" % (_CHECKPOINT_KEY, _WRAPPED)
  return any(key.startswith(prefix)
             for key in tf.train.load_checkpoint(checkpoint_path).get_variable_to_shape_map())


def load_ema_weights(hparams, model, checkpoint_path):
  """Writes the moving averages kept in a training checkpoint into `model`'s weights.

  For inference from a run trained with hparams.ema_momentum > 0. Returns True, or False
  (and leaves the weights alone) when the set keeps no average or the checkpoint holds no
  optimizer (an averaged checkpoint, or OUTPUT_DIR/best, which holds the weights to use).
  """
  if not float(common_hparams.get(hparams, "ema_momentum")):
    return False
  weights = model.trainable_variables
  averages = [None if getattr(w, "overwrite_with_gradient", False) else
              tf.Variable(tf.zeros(w.shape, w.dtype), trainable=False) for w in weights]
  iterations = tf.Variable(0, dtype=tf.int64, trainable=False)
  # Only the objects the averages hang from, under the names keras's optimizer gives them.
  node = tf.train.Checkpoint(**{_AVERAGES: averages, _ITERATIONS: iterations})
  if _saved_under_wrapper(checkpoint_path):
    node = tf.train.Checkpoint(**{_WRAPPED: node})
  tf.train.Checkpoint(**{_CHECKPOINT_KEY: node}).restore(checkpoint_path).expect_partial()
  if int(iterations.numpy()) == 0:
    return False
  for weight, average in zip(weights, averages):
    if average is not None:
      weight.assign(average)
  return True
