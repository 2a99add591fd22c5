"""Dropout that draws half the random bits: 16 per element instead of a 32-bit float.

On a CPU, generating the random numbers is most of dropout's cost (Philox: about 2 ns per
32-bit word on this machine), and transformer_small trains with five dropouts per block: with
`keras.random.dropout` they took a third of its training step (benchmarks/train.py). Here each
32-bit word gives the keep decisions of two elements (its two 16-bit halves compared with
round(rate * 65536)), which is 1.7x faster than `tf.nn.experimental.stateless_dropout` over
4M elements. The kept elements are scaled by 1 / (exact keep probability), so the expectation
is unchanged; the drop rate is `rate` to within 1/65536.

Under XLA (a `jit_compile` function, or a TPU) the bits come from a counter-based hash of each
element's index and the seed instead: XLA's CPU random-number ops run as their own loop (the
ThreeFry or Philox rounds are not fused), which made transformer_small's XLA training step 28%
slower than the same step without dropout; the hash is a dozen integer operations that XLA
fuses into the dropout's elementwise loop, so dropout costs about nothing there
(benchmarks/train.py). TensorFlow's own kernels run each of those operations separately, so
outside XLA the Philox op stays the faster one.

The random stream comes from the layer's `keras.random.SeedGenerator`, like Keras's dropout: it
is seeded, checkpointed with the layer, and advances once per call. Other backends, and a
Dropout layer with a `noise_shape`, use Keras's own dropout.
"""
import keras

from t2t_lite.layers.xla_context import in_xla_context

_LEVELS = 65536  # 16-bit keep decisions


def dropout(x, rate, seed_generator):
  """Zeroes each element of `x` with probability `rate` and scales the rest by 1/(1 - rate).

  Args:
    x: a floating tensor.
    rate: a Python float in [0, 1] (1 drops everything).
    seed_generator: a `keras.random.SeedGenerator` (advanced once per call).

  Returns:
    A tensor of x's shape and dtype.
  """
  if rate <= 0.0:
    return x
  if rate >= 1.0:  # as keras.random.dropout: everything dropped
    return keras.ops.zeros_like(x)
  if keras.config.backend() != "tensorflow":
    return keras.random.dropout(x, rate, seed=seed_generator)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  threshold = min(int(round(rate * _LEVELS)), _LEVELS - 1)
  if threshold == 0:
    return x
  # The generator's state is int64 (TensorFlow keeps variables that feed stateless RNG ops on
  # the host that way); the stateless ops take an int32 seed.
  seed = tf.cast(tf.math.floormod(seed_generator.next(), 2147483646), tf.int32)
  size = tf.size(x, out_type=tf.int64)  # int32 would overflow at 2**31 elements
  if in_xla_context():
    # Compare the top 16 bits with the threshold: the same drop rate as the TF path below.
    bits = _hashed_bits(size, seed)
    keep = tf.reshape(bits >= tf.constant(threshold << 16, tf.uint32), tf.shape(x))
  else:
    words = tf.random.stateless_uniform([(size + 1) // 2], seed=seed, minval=None,
                                        maxval=None, dtype=tf.uint32)
    halves = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:size]
    keep = tf.reshape(halves >= tf.constant(threshold, tf.uint16), tf.shape(x))
  scale = tf.cast(_LEVELS / (_LEVELS - threshold), x.dtype)
  return tf.where(keep, x * scale, tf.zeros((), x.dtype))


def _fmix32(h):
  """MurmurHash3's 32-bit finalizer: a bijection of uint32 in which every input bit flips
  each output bit with probability close to 1/2."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))
  h = h * tf.constant(0x85EBCA6B, tf.uint32)
  h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 13))
  h = h * tf.constant(0xC2B2AE35, tf.uint32)
  return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))


def _hashed_bits(size, seed):
  """`size` pseudo-random uint32 words: two finalizer rounds over each (int64) index, with one
  seed word mixed in before each round, so that every seed gives an unrelated stream."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  words = tf.bitcast(seed, tf.uint32)
  index = tf.range(size, dtype=tf.int64)
  low = tf.cast(tf.bitwise.bitwise_and(index, 0xFFFFFFFF), tf.uint32)
  high = tf.cast(tf.bitwise.right_shift(index, 32), tf.uint32)  # 0 below 2**32 elements
  h = _fmix32(low * tf.constant(0x9E3779B9, tf.uint32) + words[0])
  return _fmix32(tf.bitwise.bitwise_xor(h, words[1] + high))


@keras.saving.register_keras_serializable(package="t2t_lite")
class Dropout(keras.layers.Dropout):
  """`keras.layers.Dropout` through `dropout` above (same arguments, config and seeding)."""

  def call(self, inputs, training=False):
    if self.noise_shape is not None or not training or self.rate <= 0:
      return super().call(inputs, training=training)
    return dropout(inputs, self.rate, self.seed_generator)
