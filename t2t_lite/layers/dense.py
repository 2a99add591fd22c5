"""A fully connected layer with the classic fan-in initialisation.

`Dense` is `keras.layers.Dense` with one change of default: the kernel is drawn uniformly from
[-1/sqrt(fan_in), 1/sqrt(fan_in)] (`FanInUniform`) and the bias starts at zero. Everything else
is Keras's own layer, so LoRA (`enable_lora`), int8/float8 quantisation (`quantize`), dtype
policies, masking and serialisation keep working.
"""
import keras


@keras.saving.register_keras_serializable(package="t2t_lite")
class FanInUniform(keras.initializers.VarianceScaling):
  """Uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)]: the classic fully connected init.

  fan_in is the number of inputs of one output unit (the first dimension of a 2-D kernel, the
  receptive field times the input channels of a convolution kernel). It is `VarianceScaling`
  with `scale=1/3, mode="fan_in", distribution="uniform"`, whose limit is sqrt(3 * scale / fan_in).

  Args:
    seed: an int, a `keras.random.SeedGenerator` or None (a fresh seed).

  Example:

  >>> init = FanInUniform(seed=1)
  >>> w = init((16, 4))   # every entry in [-0.25, 0.25]
  """

  def __init__(self, seed=None):
    super().__init__(scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed)

  def get_config(self):
    return {"seed": keras.initializers.VarianceScaling.get_config(self)["seed"]}


@keras.saving.register_keras_serializable(package="t2t_lite")
class Dense(keras.layers.Dense):
  """A densely connected layer on the last axis of any input of rank >= 2.

  `output = activation(inputs @ kernel + bias)` with `kernel` of shape [fan_in, units]. It is
  `keras.layers.Dense` (LoRA, quantisation, regularisers and constraints included) whose default
  kernel initializer is `FanInUniform` and whose default bias initializer is zeros.

  Args:
    units: positive int, the size of the last output axis.
    activation: an activation name or callable; None is linear.
    use_bias: whether to add a bias.
    kernel_initializer: initializer of the kernel; default `FanInUniform()`.
    bias_initializer: initializer of the bias; default "zeros".
    **kwargs: the other arguments of `keras.layers.Dense` (kernel_regularizer, bias_regularizer,
      activity_regularizer, kernel_constraint, bias_constraint, lora_rank, lora_alpha, name,
      dtype, ...).

  Call arguments:
    inputs: a tensor of shape [..., fan_in] with rank >= 2.

  Example:

  >>> layer = Dense(32, activation="relu")
  >>> y = layer(keras.ops.ones((2, 5, 16)))   # [2, 5, 32]
  """

  def __init__(self, units, activation=None, use_bias=True, kernel_initializer=None,
               bias_initializer="zeros", **kwargs):
    if kernel_initializer is None:
      kernel_initializer = FanInUniform()
    super().__init__(units, activation=activation, use_bias=use_bias,
                     kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                     **kwargs)

  def quantize(self, mode=None, type_check=True, config=None, **kwargs):
    """Quantizes the kernel as `keras.layers.Dense.quantize` does ("int8", "float8", ...).

    Keras refuses to quantize subclasses of Dense unless told they compute the same thing;
    this one only changes a default initializer, so it skips that type check.
    """
    del type_check  # always safe here, see above
    super().quantize(mode, type_check=False, config=config, **kwargs)
