"""A fully connected layer with the classic fan-in initialisation.

`Dense` is `keras.layers.Dense` with one change of default: the kernel is drawn uniformly from
[-1/sqrt(fan_in), 1/sqrt(fan_in)] (`FanInUniform`) and the bias starts at zero. Everything else
is Keras's own layer, so LoRA (`enable_lora`), int8/float8 quantisation (`quantize`), dtype
policies, masking and serialisation keep working.

`column_parallel(layers, parts)` makes the `Dense` layers among `layers` compute their matmul
as `parts` independent column blocks for as long as it is entered (a decoding loop under XLA
on a CPU; see its docstring).
"""
import contextlib
import threading

import keras
from keras import ops

# id(layer) -> its _Blocks, for the thread that entered column_parallel (a thread-local table
# rather than a layer attribute, which Keras would track as state).
_COLUMN_BLOCKS = threading.local()


class _Blocks:
  """A Dense layer's kernel (and bias) cut for column_parallel: `columns` [in, width_g] and
  `bias` [width_g] (or None) per column block (None when the output is too narrow to cut),
  and `rows` [width_g, units] per block of the kernel's rows (None when the input is)."""

  def __init__(self, columns, bias, rows):
    self.columns, self.bias, self.rows = columns, bias, rows


def blocks_of(layer):
  """The layer's `_Blocks` under `column_parallel` (None outside it, or for a layer it leaves
  whole)."""
  table = getattr(_COLUMN_BLOCKS, "table", None)
  return None if table is None else table.get(id(layer))


def column_sizes(units, parts, min_width=64):
  """The widths of the blocks `units` columns split into: at most `parts` blocks of at least
  `min_width` columns (fewer when units is small), as equal as possible."""
  count = max(1, min(int(parts), int(units) // int(min_width)))
  base, extra = divmod(int(units), count)
  return [base + 1] * extra + [base] * (count - extra)


def _cut(tensor, sizes, axis):
  return ops.split(tensor, [sum(sizes[:i]) for i in range(1, len(sizes))], axis=axis)


def _layer_blocks(layer, parts, min_width):
  """`layer`'s _Blocks, or None when it stays whole."""
  kernel = ops.cast(layer.kernel, layer.compute_dtype)
  sizes = column_sizes(layer.units, parts, min_width)
  rows = column_sizes(kernel.shape[0], parts, min_width)
  if len(sizes) < 2 and len(rows) < 2:
    return None
  columns = bias = None
  if len(sizes) > 1:
    columns = _cut(kernel, sizes, -1)
    if layer.bias is not None:
      bias = _cut(ops.cast(layer.bias, layer.compute_dtype), sizes, -1)
  return _Blocks(columns, bias, _cut(kernel, rows, 0) if len(rows) > 1 else None)


@contextlib.contextmanager
def column_parallel(layers, parts, min_width=64):
  """Within the block, each `Dense` among `layers` computes `x @ kernel` as `parts` matmuls of
  column blocks of the kernel, concatenated: the same values, in independent operations.

  Why: XLA on a CPU runs a matmul of a few rows (a decoding step's [batch * beams, hidden])
  on one core, while its runtime runs independent operations on different cores, so blocks
  put the other cores to work (the decode rows of `python -m benchmarks.peer --no_train`;
  docs/HISTORY.md has them with and without blocks). Bigger matmuls are already spread over
  the cores, and blocks gain nothing there; outside XLA, TensorFlow's executor pays more per
  extra op than the cores return.

  A pair of layers can pass the blocks on without concatenating them: `Dense.split_outputs`
  gives a layer's column blocks and `Dense.join_inputs` takes them as blocks of the next
  layer's input rows (the Transformer's feed-forward pair). Attention per group of heads, the
  same idea for the attention's batched matmuls, measured slower: each group repeats the
  softmax's small operations, which cost more than the second core returned.

  The blocks are sliced (and cast to each layer's compute dtype) once, when the block is
  entered: enter it outside the loop whose body calls the layers (as `decode_ids` does around
  the search), so that the loop reads the blocks and slices nothing per step. Layers with
  LoRA enabled or a quantized kernel compute as usual, and so do layers with fewer than
  2 * min_width units (their input rows are still cut for `join_inputs` when wide enough).

  Args:
    layers: a layer or model, or a list of them; every `Dense` nested in them is affected.
    parts: the number of column blocks (the CPU cores to use); 1 changes nothing.
    min_width: the least number of columns of a block (each block costs the runtime a
      dispatch of its own; more blocks than cores measured slower).
  """
  if not isinstance(layers, (list, tuple)):
    layers = [layers]
  table = {}
  if int(parts) > 1:
    for root in layers:
      for layer in root._flatten_layers(include_self=True, recursive=True):  # pylint: disable=protected-access
        if (isinstance(layer, Dense) and layer.built and not layer.lora_enabled and
            layer.quantization_mode is None):
          blocks = _layer_blocks(layer, parts, min_width)
          if blocks is not None:
            table[id(layer)] = blocks
  outer = getattr(_COLUMN_BLOCKS, "table", None)
  _COLUMN_BLOCKS.table = {**(outer or {}), **table}
  try:
    yield
  finally:
    _COLUMN_BLOCKS.table = outer


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

  def split_outputs(self, inputs):
    """Under `column_parallel`: this layer's output as the list of its column blocks (bias and
    activation applied to each), for the next layer's `join_inputs` or for a consumer of each
    block. Otherwise [output]."""
    blocks = blocks_of(self)
    if blocks is None or blocks.columns is None:
      return [self(inputs)]
    outputs = []
    for g, kernel in enumerate(blocks.columns):
      y = ops.matmul(inputs, kernel)
      if blocks.bias is not None:
        y = ops.add(y, blocks.bias[g])
      outputs.append(y if self.activation is None else self.activation(y))
    return outputs

  def join_inputs(self, input_blocks):
    """This layer applied to the concatenation of `input_blocks` (blocks of its input's last
    axis, e.g. another layer's `split_outputs`): under `column_parallel`, when the blocks
    match its row blocks, the sum of each block times its rows of the kernel, so that they
    need no concatenation."""
    blocks = blocks_of(self)
    widths = [b.shape[-1] for b in input_blocks]
    if (len(input_blocks) == 1 or blocks is None or blocks.rows is None or
        widths != [r.shape[0] for r in blocks.rows]):
      return self(input_blocks[0] if len(input_blocks) == 1 else
                  ops.concatenate(input_blocks, axis=-1))
    x = ops.matmul(input_blocks[0], blocks.rows[0])
    for block, kernel in zip(input_blocks[1:], blocks.rows[1:]):
      x = ops.add(x, ops.matmul(block, kernel))
    if self.bias is not None:
      x = ops.add(x, ops.cast(self.bias, self.compute_dtype))
    return x if self.activation is None else self.activation(x)

  def call(self, inputs, training=None):
    blocks = blocks_of(self)
    if blocks is None or blocks.columns is None:
      return super().call(inputs, training=training)
    # Bias and activation are per element, so they can be applied to each block.
    return ops.concatenate(self.split_outputs(inputs), axis=-1)

  def quantize(self, mode=None, type_check=True, config=None, **kwargs):
    """Quantizes the kernel as `keras.layers.Dense.quantize` does ("int8", "float8", ...).

    Keras refuses to quantize subclasses of Dense unless told they compute the same thing;
    this one only changes a default initializer, so it skips that type check.
    """
    del type_check  # always safe here, see above
    super().quantize(mode, type_check=False, config=config, **kwargs)
