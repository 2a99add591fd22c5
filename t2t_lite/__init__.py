"""t2t_lite: tensor2tensor's workflow for TensorFlow 2 and Keras 3.

Importing the top-level package is cheap (no TensorFlow): it gives the registry, HParams and the
error types. The subpackages (layers, models, data, training, decoding, rl, utils) import
TensorFlow when they are imported.
"""
__version__ = "0.1.0"

from t2t_lite import errors  # noqa: E402
from t2t_lite import registry  # noqa: E402
from t2t_lite.hparams import HParams  # noqa: E402

__all__ = ["HParams", "errors", "registry", "__version__"]
