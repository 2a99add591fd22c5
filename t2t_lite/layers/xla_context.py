"""`in_xla_context()`: whether the ops being built will be compiled by XLA.

Code that must build its ops differently under XLA (static shapes, XLA's own random numbers)
asks it: `layers.dropout`, the cache writes of `layers.attention`, and the searches of
`t2t_lite.decoding`, which change shapes only outside XLA.
"""


def in_xla_context():
  """Whether the ops being built will be compiled by XLA (tf.function(jit_compile=True), a
  TPU). False eagerly, on other backends, and where TensorFlow lacks the check."""
  import keras  # pylint: disable=g-import-not-at-top
  if keras.config.backend() != "tensorflow":
    return False
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if tf.executing_eagerly():
    return False
  try:
    # TensorFlow's own test for "inside an XLA cluster" (its control flow uses it); not part
    # of the public API, so a TensorFlow without it counts as "not XLA".
    from tensorflow.python.ops import control_flow_util  # pylint: disable=g-import-not-at-top
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))
  except (ImportError, AttributeError):
    return False
