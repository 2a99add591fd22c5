"""Optimizers and learning-rate schedules from hparams, through keras.optimizers.

With hparams.ema_momentum > 0 the optimizer also keeps an exponential moving average of the
weights (keras's `use_ema`); `ema_weights` swaps it into the model for a block (the trainer's
evaluations); `utils/moving_average.py` knows where keras keeps it and writes it into a model
restored for inference (`load_ema_weights`).
"""
import contextlib
import math

import keras
import tensorflow as tf
from keras import ops

from t2t_lite import common_hparams
from t2t_lite.errors import HParamsError
from t2t_lite.utils.moving_average import moving_averages

OPTIMIZERS = ("adam", "adafactor", "sgd")
LEARNING_RATE_SCHEDULES = ("noam", "constant", "cosine", "wsd")


@keras.saving.register_keras_serializable(package="t2t_lite")
class NoamSchedule(keras.optimizers.schedules.LearningRateSchedule):
  """tensor2tensor's `constant*linear_warmup*rsqrt_decay*rsqrt_hidden_size`.

  lr(step) = constant * min(1, s / warmup) * rsqrt(max(s, warmup)) * rsqrt(hidden_size), with
  s = step + 1 (tensor2tensor counted from 0 and so spent its first step at learning rate 0).
  """

  def __init__(self, constant, warmup_steps, hidden_size):
    self.constant = float(constant)
    self.warmup_steps = float(max(1, warmup_steps))
    self.hidden_size = float(hidden_size)

  def __call__(self, step):
    s = ops.cast(step, "float32") + 1.0
    warmup = ops.minimum(1.0, s / self.warmup_steps)
    decay = ops.rsqrt(ops.maximum(s, self.warmup_steps))
    return self.constant * warmup * decay / math.sqrt(self.hidden_size)

  def get_config(self):
    return {"constant": self.constant, "warmup_steps": self.warmup_steps,
            "hidden_size": self.hidden_size}


@keras.saving.register_keras_serializable(package="t2t_lite")
class WarmupStableDecay(keras.optimizers.schedules.LearningRateSchedule):
  """Warmup, stable, decay: a linear warmup to `peak`, the peak held, then a linear decay to
  `peak * min_fraction` over the last `decay_steps` of `total_steps`.

  Keras has no such schedule; it is three pieces of `ops.clip`. Against a cosine over the whole
  run the rate stays at its peak until the final decay, where a cosine starts lowering it
  after the warmup: problems that learn only at a high rate keep learning for most of the run.
  """

  def __init__(self, peak, warmup_steps, total_steps, decay_steps, min_fraction=0.0):
    self.peak = float(peak)
    self.warmup_steps = int(warmup_steps)
    self.total_steps = int(total_steps)
    self.decay_steps = max(1, int(decay_steps))
    self.min_fraction = float(min_fraction)

  def __call__(self, step):
    s = ops.cast(step, "float32")
    warmup = ops.clip((s + 1.0) / float(max(1, self.warmup_steps)), 0.0, 1.0)
    decayed = ops.clip((s - float(self.total_steps - self.decay_steps)) / self.decay_steps,
                       0.0, 1.0)
    return self.peak * warmup * (1.0 - (1.0 - self.min_fraction) * decayed)

  def get_config(self):
    return {"peak": self.peak, "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps, "decay_steps": self.decay_steps,
            "min_fraction": self.min_fraction}


@keras.saving.register_keras_serializable(package="t2t_lite")
class FusedAdam(keras.optimizers.Adam):
  """keras.optimizers.Adam whose updates run as TensorFlow's fused training kernels.

  The same slots (momentums, velocities, the moving average), the same checkpoints and the
  same update: Adam's step is `ResourceApplyAdam` (what tf.keras 2's Adam ran), and the
  moving average's step is `ResourceApplyGradientDescent` with the average's delta
  (average -= (1 - momentum) * (average - weight)). Keras computes each with ~12 small ops per
  weight. Those are most of the step's ops on a small model: for transformer_tiny's 70
  weights on 2 cores, Adam with the moving average took 4.2 ms a step against 2.7 ms fused, and
  tracing and first running the update 3.6 + 2.4 s against 1.2 + 0.7 s.

  The kernels compute `1 - beta` in float32 where Keras takes it from a Python float, so the
  results differ from keras's Adam in the last bits. Keras's own update runs instead under a
  tf.distribute strategy (its update goes through the strategy's variables), for amsgrad, and
  for weights that are not resource variables.
  """

  def _fused(self, variable):
    return (not tf.distribute.has_strategy() and isinstance(variable, tf.Variable) and
            hasattr(variable, "handle"))

  def update_step(self, gradient, variable, learning_rate):
    if self.amsgrad or not self._fused(variable):
      return super().update_step(gradient, variable, learning_rate)
    dtype = variable.dtype
    step = tf.cast(self.iterations + 1, dtype)
    beta_1 = tf.cast(self.beta_1, dtype)
    beta_2 = tf.cast(self.beta_2, dtype)
    index = self._get_variable_index(variable)
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle, m=self._momentums[index].value.handle,
        v=self._velocities[index].value.handle, beta1_power=tf.pow(beta_1, step),
        beta2_power=tf.pow(beta_2, step), lr=tf.cast(learning_rate, dtype), beta1=beta_1,
        beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
        grad=tf.cast(tf.convert_to_tensor(gradient), dtype))  # IndexedSlices: dense, as Keras
    return None

  def _update_model_variables_moving_average(self, trainable_variables):
    weights = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
    if not self.use_ema or not all(self._fused(w) for w in weights):
      return super()._update_model_variables_moving_average(trainable_variables)
    # Keras's rule: the first step copies the weights (momentum 0), later ones average.
    not_first_step = tf.cast(tf.not_equal(self.iterations, 0), tf.float32)
    rate = 1.0 - not_first_step * self.ema_momentum
    for weight, average in zip(weights, self._model_variables_moving_average):
      if average is None:
        continue
      average = average.value
      tf.raw_ops.ResourceApplyGradientDescent(
          var=average.handle, alpha=tf.cast(rate, average.dtype),
          delta=average.read_value() - tf.cast(weight, average.dtype))
    return None


def _hp(hparams, name):
  # The set's value, else basic_params1's: the one home of every default.
  return common_hparams.get(hparams, name)


def learning_rate_schedule(hparams, train_steps):
  """The LearningRateSchedule that `hparams.learning_rate_schedule` names."""
  name = _hp(hparams, "learning_rate_schedule")
  constant = _hp(hparams, "learning_rate_constant")
  warmup = int(_hp(hparams, "learning_rate_warmup_steps"))
  if name == "noam":
    return NoamSchedule(constant, warmup, _hp(hparams, "hidden_size"))
  if name == "constant":
    if warmup > 0:
      # Linear warmup to the constant, then flat: PolynomialDecay with power 1 rising from 0.
      return keras.optimizers.schedules.PolynomialDecay(
          0.0, warmup, end_learning_rate=constant, power=1.0)
    return keras.optimizers.schedules.PolynomialDecay(constant, 1, constant)
  if name == "cosine":
    decay_steps = int(_hp(hparams, "learning_rate_decay_steps")) or max(1, train_steps - warmup)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else constant,
        decay_steps=decay_steps,
        alpha=float(_hp(hparams, "learning_rate_min_fraction")),
        warmup_target=constant if warmup else None,
        warmup_steps=warmup)
  if name == "wsd":
    decay_steps = int(_hp(hparams, "learning_rate_decay_steps")) or max(1, train_steps // 5)
    return WarmupStableDecay(constant, warmup, max(train_steps, decay_steps), decay_steps,
                             float(_hp(hparams, "learning_rate_min_fraction")))
  raise HParamsError("learning_rate_schedule=%s: unknown; use one of %s."
                     % (name, ", ".join(LEARNING_RATE_SCHEDULES)))


def create_optimizer(hparams, train_steps):
  """A keras optimizer for `hparams.optimizer`, with its schedule and gradient clipping."""
  name = _hp(hparams, "optimizer").lower()
  lr = learning_rate_schedule(hparams, train_steps)
  clip = float(_hp(hparams, "clip_grad_norm")) or None
  weight_decay = float(_hp(hparams, "weight_decay")) or None
  ema = float(_hp(hparams, "ema_momentum"))
  if not 0.0 <= ema < 1.0:
    raise HParamsError("ema_momentum=%s: must be in [0, 1) (0: no moving average)." % ema)
  # Keras updates the average in apply_gradients (inside the XLA-compiled step) and keeps it
  # in the optimizer's variables, so the training checkpoint holds it. It never overwrites
  # the weights during training (ema_overwrite_frequency=None): the trainer swaps the average
  # in for evaluation and Task.restore_for_inference reads it (utils/moving_average.py).
  common = dict(global_clipnorm=clip, weight_decay=weight_decay)
  if ema:
    common.update(use_ema=True, ema_momentum=ema)
  if name == "adam":
    opt = FusedAdam(
        learning_rate=lr, beta_1=_hp(hparams, "optimizer_adam_beta1"),
        beta_2=_hp(hparams, "optimizer_adam_beta2"),
        epsilon=_hp(hparams, "optimizer_adam_epsilon"), **common)
  elif name == "adafactor":
    opt = keras.optimizers.Adafactor(learning_rate=lr, **common)
  elif name in ("sgd", "momentum"):
    opt = keras.optimizers.SGD(
        learning_rate=lr, momentum=_hp(hparams, "optimizer_momentum_momentum"),
        nesterov=bool(_hp(hparams, "optimizer_momentum_nesterov")), **common)
  else:
    raise HParamsError("optimizer=%s: unknown; use one of %s." % (name, ", ".join(OPTIMIZERS)))
  if common_hparams.dtype_policy(_hp(hparams, "mixed_precision")) == "mixed_float16":
    opt = keras.optimizers.LossScaleOptimizer(opt)
  return opt


def _swap(variables, averages):
  if len(variables) != len(averages):
    raise RuntimeError("the optimizer holds %d moving averages for %d weights" % (
        len(averages), len(variables)))
  for variable, average in zip(variables, averages):
    value = tf.identity(variable)
    variable.assign(average)
    average.assign(value)


@contextlib.contextmanager
def ema_weights(optimizer, variables):
  """Inside the block `variables` (those the optimizer was built with) hold the optimizer's
  moving averages, and after it their own values again; a no-op without moving averages."""
  averages = moving_averages(optimizer)
  if averages is None:
    yield False
    return
  _swap(variables, averages)
  try:
    yield True
  finally:
    _swap(variables, averages)
