"""Serving an exported decoder over HTTP (t2t-serve): TensorFlow Serving's REST API, dynamic
batching grouped by length, Prometheus metrics. Imports only what reads an export."""
from t2t_lite.serving.batching import Batcher
from t2t_lite.serving.batching import QueueFullError
from t2t_lite.serving.model import BadInputError
from t2t_lite.serving.model import ExportedModel
from t2t_lite.serving.model import ExportNotFoundError
from t2t_lite.serving.model import configure_threads
from t2t_lite.serving.model import resolve_export
from t2t_lite.serving.server import DEFAULT_HOST
from t2t_lite.serving.server import DEFAULT_MODEL_NAME
from t2t_lite.serving.server import DEFAULT_PORT
from t2t_lite.serving.server import ModelServer
from t2t_lite.serving.server import ServerOptions
