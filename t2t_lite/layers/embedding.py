"""Token embedding with tensor2tensor's timing signal or learned positions."""
import contextlib
import math
import threading

import keras
from keras import ops

from t2t_lite.constants import PAD_ID
from t2t_lite.layers.dropout import Dropout

# id(TokenEmbedding) -> its table transposed, inside `transposed_output_weights`.
_TRANSPOSED = threading.local()


def get_timing_signal_1d(positions, channels, min_timescale=1.0, max_timescale=1.0e4,
                         dtype="float32"):
  """tensor2tensor's sinusoidal timing signal for the given positions.

  Channel i < channels // 2 is sin(position / timescale_i), channel channels // 2 + i is the
  matching cos, with timescales spaced geometrically from min_timescale to max_timescale; an odd
  last channel is zero.

  Args:
    positions: int or float tensor of positions, shape [T] (or any shape [...]).
    channels: the number of channels D.
    min_timescale: the smallest timescale.
    max_timescale: the largest timescale.
    dtype: the dtype of the result.

  Returns:
    A tensor of shape [..., channels].

  Example:

  >>> signal = get_timing_signal_1d(keras.ops.arange(10), 16)   # [10, 16]
  """
  num_timescales = channels // 2
  log_increment = math.log(float(max_timescale) / float(min_timescale)) / max(
      num_timescales - 1, 1)
  inv_timescales = min_timescale * ops.exp(
      ops.arange(num_timescales, dtype="float32") * -log_increment)
  scaled_time = ops.expand_dims(ops.cast(positions, "float32"), -1) * inv_timescales
  signal = ops.concatenate([ops.sin(scaled_time), ops.cos(scaled_time)], axis=-1)
  if channels % 2:
    signal = ops.pad(signal, [[0, 0]] * (len(signal.shape) - 1) + [[0, 1]])
  return ops.cast(signal, dtype)


@keras.saving.register_keras_serializable(package="t2t_lite")
class TokenEmbedding(keras.layers.Layer):
  """Token ids -> vectors, scaled by sqrt(hidden_size), plus position information.

  Id 0 (`PAD_ID`) is padding: the layer propagates the mask `ids != PAD_ID` to the layers
  after it.

  Args:
    vocab_size: number of token ids.
    hidden_size: size D of each vector.
    position: "sinusoidal" (tensor2tensor's timing signal), "learned" (a [max_length, D]
      table; needs max_length) or None (no position information).
    max_length: the number of learned positions; with "sinusoidal" it is only documentation.
    scale: multiply the embeddings by sqrt(D) (tensor2tensor's convention).
    dropout: dropout rate on the output (training only).
    embeddings_initializer: initializer of the table; default normal with stddev D**-0.5.
    seed: int seed of the dropout.
    **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).

  Call arguments:
    ids: int tensor [batch, length].
    start_index: position of the first id (int or scalar tensor), for one-step decoding.
    positions: optional int [batch, length], the position of each id (packed rows, where
      every example starts again at 0); replaces start_index.
    training: whether dropout is active.

  Example:

  >>> embed = TokenEmbedding(vocab_size=100, hidden_size=32)
  >>> x = embed(keras.ops.array([[5, 7, 0]]))     # [1, 3, 32], mask [[True, True, False]]
  >>> logits = embed.logits(x)                    # [1, 3, 100], with the shared table
  """

  def __init__(self, vocab_size, hidden_size, position="sinusoidal", max_length=None,
               scale=True, dropout=0.0, embeddings_initializer=None, seed=None, **kwargs):
    super().__init__(**kwargs)
    if position not in ("sinusoidal", "learned", None):
      raise ValueError("TokenEmbedding: `position` must be 'sinusoidal', 'learned' or None; "
                       "received position=%r." % (position,))
    if position == "learned" and not max_length:
      raise ValueError("TokenEmbedding: position='learned' needs max_length; received "
                       "max_length=%r." % (max_length,))
    self.vocab_size = vocab_size
    self.hidden_size = hidden_size
    self.position = position
    self.max_length = max_length
    self.scale = scale
    self.dropout = dropout
    self.seed = seed
    self.embeddings_initializer = keras.initializers.get(
        embeddings_initializer if embeddings_initializer is not None else
        keras.initializers.RandomNormal(stddev=hidden_size ** -0.5))
    self._dropout_layer = Dropout(dropout, seed=seed, dtype=self.dtype_policy)
    self.supports_masking = True

  def build(self, ids_shape=None):
    self.embeddings = self.add_weight(
        name="embeddings", shape=(self.vocab_size, self.hidden_size),
        initializer=self.embeddings_initializer)
    if self.position == "learned":
      self.position_embeddings = self.add_weight(
          name="position_embeddings", shape=(self.max_length, self.hidden_size),
          initializer=keras.initializers.get(
              keras.initializers.serialize(self.embeddings_initializer)))
    self.built = True

  def call(self, ids, start_index=0, positions=None, training=None):
    if len(ids.shape) != 2:
      raise ValueError("TokenEmbedding: `ids` must have rank 2, [batch, length]; received "
                       "shape %s." % (tuple(ids.shape),))
    ids = ops.cast(ids, "int32")
    x = ops.take(self.embeddings, ids, axis=0)
    if self.scale:
      x = x * ops.cast(self.hidden_size ** 0.5, x.dtype)
    if self.position is not None:
      if positions is None:
        positions = ops.expand_dims(
            ops.arange(ops.shape(ids)[1], dtype="int32") + ops.cast(start_index, "int32"), 0)
      positions = ops.cast(positions, "int32")
      if self.position == "sinusoidal":
        signal = get_timing_signal_1d(positions, self.hidden_size, dtype=x.dtype)
      else:
        signal = ops.take(self.position_embeddings, positions, axis=0)
      x = x + ops.cast(signal, x.dtype)
    return self._dropout_layer(x, training=training)

  def compute_mask(self, ids, mask=None, *args, **kwargs):
    return ops.not_equal(ids, PAD_ID)

  def compute_output_shape(self, ids_shape):
    return tuple(ids_shape) + (self.hidden_size,)

  def logits(self, x):
    """x @ embeddings^T: [..., D] -> [..., vocab_size], for a shared input/output embedding."""
    transposed = (getattr(_TRANSPOSED, "table", None) or {}).get(id(self))
    if transposed is not None and (keras.backend.standardize_dtype(transposed.dtype) ==
                                   keras.backend.standardize_dtype(x.dtype)):
      return ops.matmul(x, transposed)
    return ops.matmul(x, ops.transpose(ops.cast(self.embeddings, x.dtype)))

  def get_config(self):
    config = super().get_config()
    config.update({
        "vocab_size": self.vocab_size,
        "hidden_size": self.hidden_size,
        "position": self.position,
        "max_length": self.max_length,
        "scale": self.scale,
        "dropout": self.dropout,
        "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
        "seed": self.seed,
    })
    return config


@contextlib.contextmanager
def transposed_output_weights(layers, tables=None):
  """Within the block, each built output table among `layers` (see Args) computes `logits`
  as x @ table, the table being its embeddings transposed (and cast to its compute dtype):
  the same values.

  Why: TensorFlow's own CPU matmul (Eigen; t2t-serve runs it, with oneDNN off) multiplies a
  few rows by a transposed [vocab, hidden] matrix several times slower than by the same
  matrix stored [hidden, vocab] (a decoding step's 4 rows against 8192 ids: ~5x; the
  measurements are in docs/HISTORY.md, t2t-serve's third pass).

  The tables are `tables` (from `transposed_output_copies`, made once, as the decoder
  export keeps them) or else transposed when the block is entered: enter it outside the loop
  whose body calls the layers, as `decode_ids` does around the search, so that the loop
  transposes nothing per step. A layer with a table from an enclosing block keeps it. A
  tf.function traced inside the block keeps the tables it read (they are not part of its
  trace key): trace the whole decode inside the block, as the callers here do.

  Args:
    layers: a `TokenEmbedding`, or an object with an `output_embedding` (the Transformer:
      its shared output table, else None), or a list of them; others are left out.
    tables: optional {id(layer): its table}.
  """
  outer = getattr(_TRANSPOSED, "table", None) or {}
  table = dict(tables or {})
  for layer in _token_embeddings(layers):
    if id(layer) not in outer and id(layer) not in table:
      table[id(layer)] = ops.transpose(ops.cast(layer.embeddings, layer.compute_dtype))
  _TRANSPOSED.table = {**table, **outer}
  try:
    yield
  finally:
    _TRANSPOSED.table = outer or None


def transposed_output_copies(layers):
  """{id(layer): a non-trainable variable holding its transposed table} for each built
  output table among `layers` (found as `transposed_output_weights` finds them), for
  `transposed_output_weights(layers, tables=...)`: a copy made once (the decoder export
  saves it beside the weights) instead of at each call. The copies do not follow later
  changes to the weights."""
  copies = {}
  for layer in _token_embeddings(layers):
    with keras.name_scope(layer.name):
      copies[id(layer)] = keras.Variable(
          ops.transpose(ops.cast(layer.embeddings, layer.compute_dtype)), trainable=False,
          name="transposed_embeddings")
  return copies


def _token_embeddings(layers):
  """The built output tables among `layers` (only those: an input table is never read by
  `logits`, so a copy of it would be dead weight in an export)."""
  if not isinstance(layers, (list, tuple)):
    layers = [layers]
  for root in layers:
    layer = root if isinstance(root, TokenEmbedding) else getattr(root, "output_embedding",
                                                                  None)
    if isinstance(layer, TokenEmbedding) and layer.built:
      yield layer
