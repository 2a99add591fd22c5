"""t2t-serve: serve an exported decoder over HTTP with TensorFlow Serving's REST API.

    t2t-serve --output_dir=~/t2t/train/rev --model=transformer --model_name=rev
    curl -d '{"instances": ["1 0 1 1"]}' localhost:8501/v1/models/rev:predict
    # {"predictions": [{"outputs": "1 1 0 1", "scores": -0.01}]}

What it serves: --export_dir (a SavedModel written by t2t-decoder --export_saved_model, or a
TensorFlow Serving base path of numbered versions, the highest served), else
OUTPUT_DIR/export_decoder. With --output_dir (a run, or its avg/ or best/ directory) and no
export there yet, the newest checkpoint is exported first, as t2t-decoder
--export_saved_model does (--model is then required; --problem defaults to the one the run
recorded; --decode_hparams, --data_dir, --hparams apply). The model is loaded once and warmed
up before the port opens; SIGTERM stops listening, finishes the requests in flight and exits 0.

Flags: --host=127.0.0.1, --port=8501 (0: any free port; the line "t2t-serve: serving ... at
http://HOST:PORT/..." says which), --model_name=default (the NAME in /v1/models/NAME);
TensorFlow Serving's batching knobs --max_batch_size=32, --batch_timeout_micros=10000 (no
longer once every open connection's request is queued: nothing else can come to fill it),
--max_enqueued_batches=16 (a request that does not fit in the queue gets 503 at once),
--num_batch_threads=0 (0: one per CPU core, TensorFlow Serving's default; a decoding call
runs its steps one after another, so batches on several threads use several cores),
--tensorflow_intra_op_parallelism=0 (TensorFlow Serving's flag; 0: the cores divided between
the batch threads, so each batch has its own); TensorFlow's own CPU kernels rather than
oneDNN's unless TF_ENABLE_ONEDNN_OPTS is set,
--allowed_batch_sizes (a batch is padded up to the next of these sizes,
each warmed up before the port opens; default none: no padding, as in TensorFlow Serving); limits --max_input_length=-1 (in --input_unit=words|bytes; -1: the
run's hparams max_length when served from --output_dir, else 1024; 0: none),
--max_request_bytes=1048576; --shutdown_timeout_secs=30.

Endpoints: POST /v1/models/NAME:predict ({"instances": [...]} or {"inputs": [...]}),
GET /v1/models/NAME (status), GET /v1/models/NAME/metadata, GET /metrics (Prometheus).
Beam size, alpha and return_beams are fixed when the decoder is exported (they are part of
its graph), so a request cannot change them.
"""
import os
import sys

from absl import flags

from t2t_lite import flags as t2t_flags
from t2t_lite.bin import common


_define = t2t_flags.define_once


_define(flags.DEFINE_string, "export_dir", None,
        "t2t-serve: the decoder SavedModel to serve (default OUTPUT_DIR/export_decoder).")
_define(flags.DEFINE_string, "host", "127.0.0.1", "t2t-serve: the address to listen on.")
_define(flags.DEFINE_integer, "port", 8501, "t2t-serve: the port (0: any free one).")
_define(flags.DEFINE_string, "model_name", "default", "t2t-serve: NAME in /v1/models/NAME.")
_define(flags.DEFINE_integer, "max_batch_size", 32, "t2t-serve: most inputs per model call.")
_define(flags.DEFINE_integer, "batch_timeout_micros", 10000,
        "t2t-serve: how long the oldest queued input waits for its batch to fill (no "
        "longer once every open connection's request is queued).")
_define(flags.DEFINE_integer, "max_enqueued_batches", 16,
        "t2t-serve: the queue holds max_batch_size * max_enqueued_batches inputs; beyond, 503.")
_define(flags.DEFINE_integer, "num_batch_threads", 0,
        "t2t-serve: batches run at once (0: one per CPU core).")
_define(flags.DEFINE_integer, "tensorflow_intra_op_parallelism", 0,
        "t2t-serve: TensorFlow's intra-op threads (0: the CPU cores divided between the "
        "batch threads, so 1 with one batch thread per core).")
_define(flags.DEFINE_list, "allowed_batch_sizes", None,
        "t2t-serve: batch sizes the model is called with (a batch is padded up to the next; "
        "increasing, the last one --max_batch_size; default or 'none': no padding).")
_define(flags.DEFINE_integer, "max_input_length", -1,
        "t2t-serve: the longest input in --input_unit (-1: the run's max_length, else 1024; "
        "0: no limit).")
_define(flags.DEFINE_enum, "input_unit", "words", ["words", "bytes"],
        "t2t-serve: what --max_input_length counts.")
_define(flags.DEFINE_integer, "max_request_bytes", 1 << 20,
        "t2t-serve: the largest request body.")
_define(flags.DEFINE_float, "shutdown_timeout_secs", 30.0,
        "t2t-serve: after SIGTERM, how long requests in flight get to finish.")

DEFAULT_MAX_INPUT_LENGTH = 1024


def _check_flags(FLAGS):  # pylint: disable=invalid-name
  from t2t_lite.errors import ConfigError
  if not FLAGS.export_dir and not FLAGS.output_dir:
    raise ConfigError("--export_dir or --output_dir is required (see --help).")
  if not 0 <= FLAGS.port <= 65535:
    raise ConfigError("--port=%d is not a port number (0-65535)." % FLAGS.port)
  for name in ("max_batch_size", "max_enqueued_batches", "max_request_bytes"):
    if FLAGS[name].value < 1:
      raise ConfigError("--%s must be >= 1, not %d." % (name, FLAGS[name].value))
  for name in ("num_batch_threads", "tensorflow_intra_op_parallelism"):
    if FLAGS[name].value < 0:
      raise ConfigError("--%s must be >= 0 (0: chosen from the CPU cores), not %d." %
                        (name, FLAGS[name].value))
  if FLAGS.batch_timeout_micros < 0:
    raise ConfigError("--batch_timeout_micros must be >= 0.")
  _allowed_batch_sizes(FLAGS)
  if FLAGS.max_input_length < -1:
    raise ConfigError("--max_input_length must be >= -1.")
  if not FLAGS.model_name or "/" in FLAGS.model_name or ":" in FLAGS.model_name:
    raise ConfigError("--model_name=%r: give a name without '/' or ':'." % FLAGS.model_name)


def _allowed_batch_sizes(FLAGS):  # pylint: disable=invalid-name
  """--allowed_batch_sizes as ServerOptions takes it: () (no padding, the default) or ints."""
  from t2t_lite.errors import ConfigError
  values = FLAGS.allowed_batch_sizes
  if values is None:
    return ()
  if [v.strip().lower() for v in values] == ["none"]:
    return ()
  try:
    sizes = [int(v) for v in values]
  except ValueError:
    raise ConfigError("--allowed_batch_sizes=%s: give increasing integers ending with "
                      "--max_batch_size, or 'none'." % ",".join(values)) from None
  if sizes != sorted(set(sizes)) or sizes[0] < 1 or sizes[-1] != FLAGS.max_batch_size:
    raise ConfigError("--allowed_batch_sizes=%s must increase and end with "
                      "--max_batch_size=%d." % (",".join(values), FLAGS.max_batch_size))
  return tuple(sizes)


def export_first(output_dir, export_dir):
  """Exports the newest checkpoint of `output_dir` to `export_dir`, as t2t-decoder
  --export_saved_model does."""
  from t2t_lite import decoding
  from t2t_lite import output_dir as output_dir_lib
  from t2t_lite import registry
  from t2t_lite.errors import ConfigError
  from t2t_lite.task import Task

  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  common.import_registrations(FLAGS.t2t_usr_dir)
  output_dir_lib.latest_checkpoint(output_dir)
  hparams = output_dir_lib.load_hparams(output_dir, FLAGS.hparams_set, FLAGS.hparams)
  problem = FLAGS.problem or hparams.get("problem_name")
  if not problem:
    raise ConfigError("--problem is required to export %s (its hparams.json does not name "
                      "one)." % output_dir)
  if not FLAGS.model:
    raise ConfigError("%s has no export yet: give --model (e.g. --model=transformer) to "
                      "export it first, or --export_dir." % output_dir)
  registry.problem(problem)
  registry.model(FLAGS.model)
  data_dir = os.path.expanduser(FLAGS.data_dir) if FLAGS.data_dir else None
  task = Task(problem, FLAGS.model, hparams, data_dir)
  model, _ = decoding.restore_model(task, output_dir)
  decoding.export_decoder(task, model, decoding.decode_hparams(FLAGS.decode_hparams),
                          export_dir)
  print("t2t-serve: exported %s to %s" % (output_dir, export_dir), flush=True)


def _max_input_length(output_dir):
  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  if FLAGS.max_input_length >= 0:
    return FLAGS.max_input_length
  if output_dir:
    from t2t_lite import output_dir as output_dir_lib
    hparams = output_dir_lib.read_saved_hparams(output_dir)
    max_length = int((hparams.get("max_length") if hparams is not None else 0) or 0)
    if max_length > 1:
      return max_length - 1  # room for the EOS the export appends
  return DEFAULT_MAX_INPUT_LENGTH


def main(argv):
  import asyncio

  from absl import logging

  from t2t_lite import constants
  from t2t_lite import serving
  from t2t_lite.utils import hardware
  from t2t_lite.errors import ConfigError

  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  t2t_flags.set_hparams_from_args(argv[1:])
  _check_flags(FLAGS)
  serving.configure_threads(FLAGS.num_batch_threads, FLAGS.tensorflow_intra_op_parallelism)
  output_dir = os.path.expanduser(FLAGS.output_dir) if FLAGS.output_dir else None
  export_dir = os.path.expanduser(FLAGS.export_dir or
                                  os.path.join(output_dir, constants.DECODER_EXPORT_DIR))
  try:
    serving.resolve_export(export_dir)
  except serving.ExportNotFoundError:
    if not output_dir:
      raise
    export_first(output_dir, export_dir)
  options = serving.ServerOptions(
      model_name=FLAGS.model_name, max_batch_size=FLAGS.max_batch_size,
      batch_timeout_micros=FLAGS.batch_timeout_micros,
      max_enqueued_batches=FLAGS.max_enqueued_batches,
      num_batch_threads=FLAGS.num_batch_threads,
      allowed_batch_sizes=_allowed_batch_sizes(FLAGS),
      max_input_length=_max_input_length(output_dir), input_unit=FLAGS.input_unit,
      max_request_bytes=FLAGS.max_request_bytes,
      shutdown_timeout=FLAGS.shutdown_timeout_secs)
  model = serving.ExportedModel(export_dir)
  if model.computes_bfloat16 and not hardware.onednn_enabled():
    logging.warning("%s computes in bfloat16, which TensorFlow's own CPU kernels emulate: "
                    "set TF_ENABLE_ONEDNN_OPTS=1 for oneDNN's.", model.path)
  model.warm_up(options.allowed_batch_sizes or (1, options.max_batch_size))
  server = serving.ModelServer(model, options)

  def ready(host, port):
    print("t2t-serve: serving %s (version %d, %s) at http://%s:%d/v1/models/%s" %
          (model.path, model.version, ", ".join(model.output_names), host, port,
           FLAGS.model_name), flush=True)

  try:
    asyncio.run(server.serve(FLAGS.host, FLAGS.port, on_ready=ready))
  except OSError as e:
    raise ConfigError("cannot listen on %s:%d: %s" % (FLAGS.host, FLAGS.port,
                                                     e.strerror or e)) from None
  print("t2t-serve: stopped", flush=True)
  sys.stdout.flush()
  return 0


# A decoding step is many small ops, for which TensorFlow's own CPU kernels cost less than
# oneDNN's; float32 matmuls run as fast either way (BENCHMARKS.md "serve": t2t-serve with
# oneDNN, `python -m benchmarks.serve`).
SERVING_ENVIRONMENT = {"TF_ENABLE_ONEDNN_OPTS": "0"}


def set_serving_environment(environ=None):
  """TensorFlow's settings for serving, where the user has not set them (read when
  TensorFlow is imported, so call it before). TF_ENABLE_ONEDNN_OPTS=1 brings oneDNN back,
  e.g. for an export that computes in bfloat16."""
  environ = os.environ if environ is None else environ
  for name, value in SERVING_ENVIRONMENT.items():
    environ.setdefault(name, value)


def console_main():
  set_serving_environment()
  common.run_main(main, "t2t-serve", __doc__)


if __name__ == "__main__":
  console_main()
