"""tensorflow-text, imported on demand: the SentencePiece op of a strings SavedModel.

It is not a dependency of t2t_lite: each of its releases is built for one TensorFlow version
(README says which to install), so a missing or mismatched install is a one-line user error.
"""
import tensorflow as tf

from t2t_lite.errors import ConfigError


def release():
  """The tensorflow-text release line for this TensorFlow, e.g. "2.21"."""
  return ".".join(tf.__version__.split(".")[:2])


def import_tensorflow_text(needed_for):
  """The tensorflow_text module (importing it registers its ops with TensorFlow).

  Args:
    needed_for: what needs it, for the message (e.g. "a SentencePiece vocabulary in
      TensorFlow ops").

  Raises:
    ConfigError: it is not installed, or it does not load with this TensorFlow (built for
      another version); the message names the release to install.
  """
  try:
    import tensorflow_text  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ConfigError("%s needs tensorflow-text: pip install tensorflow-text~=%s.0" %
                      (needed_for, release())) from None
  except (tf.errors.OpError, OSError) as e:  # its ops were built for another TensorFlow
    raise ConfigError(
        "%s needs tensorflow-text, which does not load with this TensorFlow %s (%s): pip "
        "install tensorflow-text~=%s.0" % (needed_for, tf.__version__,
                                           str(e).strip().splitlines()[0][:200], release())
        ) from None
  return tensorflow_text
