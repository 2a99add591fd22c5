"""t2t-serve's HTTP server: TensorFlow Serving's REST API over a string-to-string decoder
SavedModel, with dynamic batching and Prometheus metrics.

    POST /v1/models/NAME:predict   {"instances": ["1 0 1", ...]}
        -> {"predictions": [{"outputs": "1 0 1", "scores": -0.02}, ...]}
    POST /v1/models/NAME:predict   {"inputs": ["1 0 1", ...]}          (columnar)
        -> {"outputs": {"outputs": ["1 0 1", ...], "scores": [-0.02, ...]}}
    GET  /v1/models/NAME            -> {"model_version_status": [{"version": "1",
                                         "state": "AVAILABLE", ...}]}
    GET  /v1/models/NAME/metadata   -> the signature's inputs and outputs
    GET  /metrics                   -> request count, latency, batch size (Prometheus text)

(`/v1/models/NAME/versions/V...` works too.) The answers have TensorFlow Serving's shapes, so a
client written for it works unchanged. A bad request is HTTP 400 with `{"error": "..."}`
naming the problem; a full batching queue is 503 at once; an unknown model name is 404.

The HTTP library is aiohttp: one asyncio event loop parses HTTP (its C parser), holds every
waiting request as a cheap coroutine while the batching queue fills, and hands batches to a
worker thread; it is an aio-libs project released steadily since 2014, has graceful shutdown
built in (stop listening, let in-flight requests finish, then clean up), and needs no separate
ASGI server, so the request path is one library, not two (starlette + uvicorn).
"""
import asyncio
import dataclasses
import json
import signal
import time

from aiohttp import web
import prometheus_client

from t2t_lite.serving import batching
from t2t_lite.serving import model as model_lib

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501  # TensorFlow Serving's REST port
DEFAULT_MODEL_NAME = "default"  # tensorflow_model_server's default --model_name
INPUT_UNITS = ("words", "bytes")


class RequestError(ValueError):
  """A request the server cannot take: HTTP 400 with its message."""


def input_length(text, unit="words"):
  """An input's length: whitespace-separated words (token, symbol and integer vocabularies)
  or UTF-8 bytes (byte-level vocabularies)."""
  if unit == "bytes":
    return len(text.encode("utf-8"))
  return len(text.split())


@dataclasses.dataclass
class ServerOptions:
  """What the server does besides the model: its names, limits and batching knobs.

  Args:
    model_name: the NAME in /v1/models/NAME.
    max_batch_size, batch_timeout_micros, max_enqueued_batches, num_batch_threads,
      allowed_batch_sizes: TensorFlow Serving's batching knobs (see `batching`;
      num_batch_threads 0: one per CPU core);
      allowed_batch_sizes: empty or None (the default, as in TensorFlow Serving): no padding.
      (The export's graph takes any batch size, and its decoding loop meets every smaller
      one as rows finish, so padding to a few sizes would only add rows.)
    max_input_length: the longest input, in `input_unit`s (0: no limit).
    input_unit: "words" or "bytes".
    max_request_bytes: the largest request body.
    shutdown_timeout: seconds that in-flight requests get to finish after SIGTERM.
  """
  model_name: str = DEFAULT_MODEL_NAME
  max_batch_size: int = 32
  batch_timeout_micros: int = 10000
  max_enqueued_batches: int = 16
  num_batch_threads: int = 0
  allowed_batch_sizes: tuple = None
  max_input_length: int = 1024
  input_unit: str = "words"
  max_request_bytes: int = 1 << 20
  shutdown_timeout: float = 30.0

  def __post_init__(self):
    if self.input_unit not in INPUT_UNITS:
      raise ValueError("input_unit must be one of %s, not %r" % (INPUT_UNITS,
                                                                 self.input_unit))
    self.allowed_batch_sizes = tuple(self.allowed_batch_sizes or ())


class Metrics:
  """The server's Prometheus figures, in a registry of their own."""

  def __init__(self, max_batch_size):
    self.registry = prometheus_client.CollectorRegistry()
    self.requests = prometheus_client.Counter(
        "t2t_serving_requests", "Predict requests answered, by HTTP status code.", ["code"],
        registry=self.registry)
    self.latency = prometheus_client.Histogram(
        "t2t_serving_request_latency_seconds", "Predict request latency.",
        buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30),
        registry=self.registry)
    sizes = sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, 512, max_batch_size})
    self.batch_size = prometheus_client.Histogram(
        "t2t_serving_batch_size", "Inputs decoded per model call.",
        buckets=[s for s in sizes if s <= max_batch_size], registry=self.registry)
    self.batch_latency = prometheus_client.Histogram(
        "t2t_serving_batch_latency_seconds", "Time of one batched model call.",
        buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30),
        registry=self.registry)
    self.queued = prometheus_client.Gauge(
        "t2t_serving_queued_inputs", "Inputs waiting for a batch.", registry=self.registry)

  def on_batch(self, size, seconds):
    self.batch_size.observe(size)
    self.batch_latency.observe(seconds)

  def text(self):
    return prometheus_client.generate_latest(self.registry)


def _error(status, message):
  return web.json_response({"error": message}, status=status)


def parse_predict_body(body, options):
  """A predict request's body (bytes) -> (texts, columnar).

  Raises:
    RequestError: malformed JSON, a missing or wrong field, a non-string, an empty or too long
      input; the message says which.
  """
  try:
    request = json.loads(body)
  except (ValueError, UnicodeDecodeError) as e:
    raise RequestError("malformed JSON in the request body: %s" % e) from None
  if not isinstance(request, dict):
    raise RequestError("the request body must be a JSON object with \"instances\" or "
                       "\"inputs\", not %s" % type(request).__name__)
  signature = request.get("signature_name", model_lib.SIGNATURE_NAME)
  if signature not in model_lib.SIGNATURE_NAMES:
    raise RequestError("unknown signature_name %r: this model serves %r" %
                       (signature, model_lib.SIGNATURE_NAME))
  unknown = sorted(set(request) - {"instances", "inputs", "signature_name"})
  if unknown:
    raise RequestError("unknown field(s) %s: send \"instances\" (a list of strings) or "
                       "\"inputs\"" % ", ".join(map(repr, unknown)))
  if ("instances" in request) == ("inputs" in request):
    raise RequestError("send exactly one of \"instances\" (row format) or \"inputs\" "
                       "(columnar format), each a list of input strings")
  columnar = "inputs" in request
  field = "inputs" if columnar else "instances"
  values = request[field]
  if columnar and isinstance(values, dict):
    if set(values) != {model_lib.INPUT_NAME}:
      raise RequestError("\"inputs\" as an object must have the one key %r" %
                         model_lib.INPUT_NAME)
    values = values[model_lib.INPUT_NAME]
  if not isinstance(values, list):
    raise RequestError("%r must be a list of input strings, not %s" %
                       (field, type(values).__name__))
  if not values:
    raise RequestError("%r is empty: send at least one input string" % field)
  texts = []
  for i, value in enumerate(values):
    if (not columnar and isinstance(value, dict) and
        set(value) == {model_lib.INPUT_NAME}):
      value = value[model_lib.INPUT_NAME]  # row format with the input's name
    if not isinstance(value, str):
      raise RequestError("%s[%d] must be a string, not %s" %
                         (field, i, type(value).__name__ if value is not None else "null"))
    if not value.strip():
      raise RequestError("%s[%d] is an empty string: nothing to decode" % (field, i))
    length = input_length(value, options.input_unit)
    if options.max_input_length and length > options.max_input_length:
      raise RequestError("%s[%d] is %d %s long; this server takes at most %d" %
                         (field, i, length, options.input_unit, options.max_input_length))
    texts.append(value)
  return texts, columnar


def format_predictions(results, columnar, output_names):
  """One dict of outputs per input -> TensorFlow Serving's answer."""
  if columnar:
    return {"outputs": {name: [r[name] for r in results] for name in output_names}}
  return {"predictions": results}


class ModelServer:
  """The aiohttp application over one `ExportedModel`-like object (`predict(texts)` -> one
  dict per text, `output_names`, `version`, `path`).

  Args:
    model: the loaded (and warmed-up) model.
    options: a `ServerOptions`.

  Example:

  >>> server = ModelServer(ExportedModel(export_dir), ServerOptions(model_name="rev"))
  >>> asyncio.run(server.serve("127.0.0.1", 8501))   # until SIGTERM / SIGINT
  """

  def __init__(self, model, options=None):
    self.model = model
    self.options = options or ServerOptions()
    self.metrics = Metrics(self.options.max_batch_size)
    self.batcher = batching.Batcher(
        model.predict, max_batch_size=self.options.max_batch_size,
        batch_timeout_micros=self.options.batch_timeout_micros,
        max_enqueued_batches=self.options.max_enqueued_batches,
        num_batch_threads=self.options.num_batch_threads,
        allowed_batch_sizes=self.options.allowed_batch_sizes,
        length=lambda text: input_length(text, self.options.input_unit),
        on_batch=self.metrics.on_batch, more_may_come=self._more_may_come)
    self.metrics.queued.set_function(lambda: self.batcher.queued)
    self._runner = None  # set by serve(): its connections tell who may still send

  def _more_may_come(self):
    """Whether a request may still come to fill a batch: some open connection has no
    request in the batcher (it is sending one, or reading its answer and may send the next).
    When every connection's request waits in the batcher already, waiting longer only adds
    latency. Unknown (an application served by other means): True."""
    server = self._runner.server if self._runner is not None else None
    if server is None:
      return True
    return len(server.connections) > self.batcher.open_requests

  def make_app(self):
    app = web.Application(client_max_size=self.options.max_request_bytes)
    name = "{name:[^/:]+}"
    version = "/versions/{version:[0-9]+}"
    for prefix in ("/v1/models/" + name, "/v1/models/" + name + version):
      app.router.add_post(prefix + ":predict", self.predict)
      app.router.add_get(prefix, self.status)
      app.router.add_get(prefix + "/metadata", self.metadata)
    app.router.add_get("/metrics", self.metrics_page)
    app.on_startup.append(self._start)
    app.on_shutdown.append(self._drain)
    app.on_cleanup.append(self._stop)
    return app

  async def _start(self, app):
    del app
    self.batcher.start()

  async def _drain(self, app):
    del app
    self.batcher.flush()

  async def _stop(self, app):
    del app
    await self.batcher.close()

  def _check_model(self, request):
    if request.match_info["name"] != self.options.model_name:
      return _error(404, "Servable not found for request: Latest(%s); this server serves %r" %
                    (request.match_info["name"], self.options.model_name))
    wanted = request.match_info.get("version")
    if wanted is not None and int(wanted) != self.model.version:
      return _error(404, "Servable not found for request: Specific(%s, %s); this server "
                    "serves version %d" % (request.match_info["name"], wanted,
                                           self.model.version))
    return None

  async def status(self, request):
    missing = self._check_model(request)
    if missing is not None:
      return missing
    return web.json_response({"model_version_status": [{
        "version": str(self.model.version), "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]})

  async def metadata(self, request):
    missing = self._check_model(request)
    if missing is not None:
      return missing
    outputs = {name: {"name": name} for name in self.model.output_names}
    return web.json_response({
        "model_spec": {"name": self.options.model_name, "signature_name": "",
                       "version": str(self.model.version)},
        "metadata": {"signature_def": {"signature_def": {model_lib.SIGNATURE_NAME: {
            "inputs": {model_lib.INPUT_NAME: {"dtype": "DT_STRING",
                                              "name": model_lib.INPUT_NAME}},
            "outputs": outputs, "method_name": "tensorflow/serving/predict"}}}}})

  async def metrics_page(self, request):
    del request
    return web.Response(body=self.metrics.text(),
                        headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

  async def predict(self, request):
    started = time.monotonic()
    response = await self._predict(request)
    self.metrics.requests.labels(code=str(response.status)).inc()
    self.metrics.latency.observe(time.monotonic() - started)
    return response

  async def _predict(self, request):
    missing = self._check_model(request)
    if missing is not None:
      return missing
    try:
      body = await request.read()
    except web.HTTPRequestEntityTooLarge:
      return _error(400, "the request body is over this server's limit of %d bytes "
                    "(--max_request_bytes)" % self.options.max_request_bytes)
    try:
      texts, columnar = parse_predict_body(body, self.options)
    except RequestError as e:
      return _error(400, str(e))
    if len(texts) > self.batcher.capacity:
      return _error(400, "%d inputs in one request; this server queues at most %d "
                    "(max_batch_size * max_enqueued_batches)" %
                    (len(texts), self.batcher.capacity))
    try:
      waiting = self.batcher.submit(texts)
    except batching.QueueFullError as e:
      return _error(503, str(e))
    results = await waiting
    for i, result in enumerate(results):
      if isinstance(result, model_lib.BadInputError):
        return _error(400, "input %d: %s" % (i, result))
      if isinstance(result, BaseException):
        return _error(500, "input %d: %s: %s" % (i, type(result).__name__, result))
    return web.json_response(
        format_predictions(results, columnar, self.model.output_names))

  async def serve(self, host=DEFAULT_HOST, port=DEFAULT_PORT, on_ready=None, stop=None):
    """Serves until SIGTERM or SIGINT (or until `stop`, an asyncio.Event, is set); then
    stops listening, lets in-flight requests finish (up to shutdown_timeout seconds) and
    returns. `on_ready(host, port)` is called once the port is open."""
    runner = web.AppRunner(self.make_app(), handle_signals=False, access_log=None,
                           shutdown_timeout=self.options.shutdown_timeout)
    await runner.setup()
    self._runner = runner
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGTERM, signal.SIGINT):
      try:
        loop.add_signal_handler(signum, stop.set)
        handled.append(signum)
      except (RuntimeError, ValueError):  # not the main thread (e.g. a test's thread)
        pass
    try:
      site = web.TCPSite(runner, host, port)
      await site.start()
      if on_ready is not None:
        bound = runner.addresses[0]
        on_ready(bound[0], bound[1])
      await stop.wait()
    finally:
      for signum in handled:
        loop.remove_signal_handler(signum)
      await runner.cleanup()
