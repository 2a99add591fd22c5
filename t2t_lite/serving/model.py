"""Reads a strings-to-strings decoder SavedModel (what `t2t-decoder --export_saved_model`
writes) and calls its `serving_default` signature on a batch of raw strings.

Nothing here imports the rest of t2t_lite's model code: like TensorFlow Serving, the server
needs only the export.

    model = ExportedModel("/tmp/run/export_decoder")   # or a base path of numbered versions
    model.warm_up()
    model.predict(["1 0 1 1"])   # [{"outputs": "1 1 0 1", "scores": -0.01}]
"""
import os

from absl import logging
import tensorflow as tf

from t2t_lite.errors import ConfigError
from t2t_lite.serving import batching
from t2t_lite.utils import hardware
from t2t_lite.utils import tensorflow_text as tensorflow_text_lib

SIGNATURE_NAME = "serving_default"
SIGNATURE_NAMES = (SIGNATURE_NAME, "serve")  # export.py serves the same function under both
INPUT_NAME = "inputs"
SAVED_MODEL_FILE = "saved_model.pb"


def configure_threads(num_batch_threads, intra_op_parallelism=0):
  """Sets TensorFlow's intra-op thread pool for a server that runs `num_batch_threads` model
  calls at once (0: one per CPU core): `intra_op_parallelism` threads, or with 0 the CPU
  cores divided between the batch threads (at least 1). A decoding call runs small ops one after another; with every
  call free to split each op over all the cores, concurrent calls contend for them
  (benchmarks/serve.py). Call it before TensorFlow runs anything.

  Returns:
    The number of intra-op threads in use: the one set, or TensorFlow's own where it has run
    already in this process (the pool cannot change then; a warning says so).
  """
  threads = int(intra_op_parallelism) or max(
      1, hardware.cpu_cores() // batching.batch_threads(num_batch_threads))
  try:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
  except RuntimeError:  # TensorFlow already initialized its thread pools
    if tf.config.threading.get_intra_op_parallelism_threads() != threads:
      logging.warning("TensorFlow already runs in this process: its intra-op threads stay "
                      "as they are instead of %d.", threads)
    return tf.config.threading.get_intra_op_parallelism_threads()
  return threads


class ExportNotFoundError(ConfigError):
  """No SavedModel where the server was pointed."""


class BadInputError(ValueError):
  """The export rejected one input (e.g. a token outside its vocabulary)."""


def _is_saved_model(path):
  return tf.io.gfile.exists(os.path.join(path, SAVED_MODEL_FILE))


def resolve_export(path):
  """(SavedModel directory, version) for `path`: a SavedModel directory itself (its version
  is its name when that is a number, else 1), or a TensorFlow Serving base path whose
  numbered subdirectories hold SavedModels (the highest number is served).

  Raises:
    ExportNotFoundError: neither.
  """
  path = path.rstrip("/") or "/"
  if _is_saved_model(path):
    name = os.path.basename(path)
    return path, int(name) if name.isdigit() else 1
  versions = []
  if tf.io.gfile.isdir(path):
    for name in tf.io.gfile.listdir(path):
      name = name.rstrip("/")
      if name.isdigit() and _is_saved_model(os.path.join(path, name)):
        versions.append(int(name))
  if not versions:
    raise ExportNotFoundError(
        "no SavedModel in %s (no %s there nor in a numbered version subdirectory): export "
        "one with t2t-decoder --export_saved_model, or point --output_dir at the run." %
        (path, SAVED_MODEL_FILE))
  version = max(versions)
  return os.path.join(path, str(version)), version


def _to_json(value):
  """A numpy value of the signature's outputs -> str / float / int / nested lists."""
  if isinstance(value, bytes):
    return value.decode("utf-8", "replace")
  if hasattr(value, "tolist"):
    value = value.tolist()
  if isinstance(value, list):
    return [_to_json(v) for v in value]
  if isinstance(value, bytes):
    return value.decode("utf-8", "replace")
  return value


def _error_message(error):
  """The line of a TensorFlow error that says what went wrong (an assertion's message, not
  "Graph execution error:" nor the node names and stack)."""
  message = getattr(error, "message", None) or str(error)
  lines = [" ".join(line.split()) for line in message.splitlines() if line.strip()]
  lines = [line.split(" [[")[0].strip() for line in lines
           if not line.startswith(("[[", "File ", "Detected at node", "Graph execution error"))]
  lines = [line for line in lines if line]
  for line in lines:
    if line.startswith("assertion failed:"):
      return line[len("assertion failed:"):].replace("] [", " ").strip(" []")
  return lines[-1] if lines else type(error).__name__


def _computes_bfloat16(function):
  """Whether an op of the signature's graph (its functions included) is typed bfloat16."""
  graph_def = function.graph.as_graph_def()
  nodes = list(graph_def.node)
  for library_function in graph_def.library.function:
    nodes.extend(library_function.node_def)
  bfloat16 = tf.bfloat16.as_datatype_enum
  return any(value.type == bfloat16 for node in nodes for value in node.attr.values())


def load_saved_model(path):
  """tf.saved_model.load(path), with the ops of tensorflow-text registered first where the
  export uses them (a SentencePiece vocabulary: its SentencepieceOp), as a server built
  with those ops (TensorFlow Serving's model server) runs it.

  Raises:
    ConfigError: the export needs ops that are not installed (the message names them).
  """
  try:
    return tf.saved_model.load(path)
  except (tf.errors.OpError, ValueError, RuntimeError) as e:
    message = str(e)
    if "not registered" not in message:
      raise
  tensorflow_text_lib.import_tensorflow_text(
      "%s uses ops TensorFlow does not have (%s): an export with a SentencePiece vocabulary"
      % (path, _unregistered_op(message)))
  try:
    return tf.saved_model.load(path)
  except (tf.errors.OpError, ValueError, RuntimeError) as e:
    if "not registered" not in str(e):
      raise
    raise ConfigError("%s uses ops TensorFlow does not have (%s)" %
                      (path, _unregistered_op(str(e)))) from None


def _unregistered_op(message):
  start = message.find("Op type not registered")
  return message[start:].split(" in binary")[0] if start >= 0 else message.splitlines()[0]


class ExportedModel:
  """The `serving_default` signature of a string-to-string decoder SavedModel.

  Args:
    export_dir: a SavedModel directory, or a base path of numbered version directories.

  Raises:
    ExportNotFoundError: no SavedModel there.
    ConfigError: a SavedModel needing ops that are not installed, or one without a
      `serving_default` signature taking string "inputs".

  Attributes:
    path: the SavedModel directory served; version: its version number;
    output_names: the signature's outputs ("outputs", "scores", and with return_beams
      "beams", "beam_scores").
    computes_bfloat16: whether the export computes in bfloat16 (mixed precision).
  """

  def __init__(self, export_dir):
    self.path, self.version = resolve_export(export_dir)
    self._loaded = load_saved_model(self.path)
    function = self._loaded.signatures.get(SIGNATURE_NAME)
    inputs = function.structured_input_signature[1] if function is not None else {}
    spec = inputs.get(INPUT_NAME)
    if spec is None or spec.dtype != tf.string or len(inputs) != 1:
      raise ConfigError(
          "%s has no %s signature taking one tf.string tensor %r: serve a decoder exported "
          "by t2t-decoder --export_saved_model (its signatures: %s)." %
          (self.path, SIGNATURE_NAME, INPUT_NAME, sorted(self._loaded.signatures)))
    self._function = function
    self.output_names = sorted(function.structured_outputs)
    self.returns_beams = "beams" in self.output_names
    self.computes_bfloat16 = _computes_bfloat16(function)

  def predict(self, texts):
    """One decode of a batch: `texts` (a list of str) -> one dict of outputs per text.

    Raises:
      BadInputError: the export rejected the batch (an InvalidArgument error, such as an
        unknown token); the message is its first line.
    """
    try:
      outputs = self._function(**{INPUT_NAME: tf.constant(list(texts), tf.string)})
    except tf.errors.InvalidArgumentError as e:
      raise BadInputError(_error_message(e)) from None
    columns = {name: tensor.numpy() for name, tensor in outputs.items()}
    return [{name: _to_json(column[i]) for name, column in columns.items()}
            for i in range(len(texts))]

  def warm_up(self, batch_sizes=(1, 2, 8)):
    """Runs the signature once per batch size on empty inputs (valid for every encoder: EOS
    alone), so the first request does not pay for TensorFlow's first-call work. (Work done
    per input shape, such as compiling an XLA op the export holds, recurs for each new
    input length; only inputs of that length could warm it.)"""
    for size in batch_sizes:
      self.predict([""] * size)
