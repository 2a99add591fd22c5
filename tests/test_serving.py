"""t2t-serve on a tiny trained run: TensorFlow Serving's REST API over the decoder export,
dynamic batching, 400s for bad input, 503 for a full queue, and a SIGTERM that drains.

All traffic goes to 127.0.0.1; servers run in a thread of this process (one in a subprocess,
for SIGTERM), on ports the OS picks."""
import asyncio
import concurrent.futures
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver

from t2t_lite import serving
from t2t_lite.bin import t2t_serve
from t2t_lite.errors import ConfigError, T2TUserError
from test_decoder_script import DECODE_HPARAMS, LINES, PROBLEM, run  # noqa: F401 (the run)

NAME = "rev"
WAIT = 60  # seconds: an upper bound on any one wait, never a timing assert


@contextlib.contextmanager
def flag_values(**values):
  was_parsed = flags.FLAGS.is_parsed()
  if not was_parsed:
    flags.FLAGS.mark_as_parsed()
  try:
    with flagsaver.flagsaver(**values):
      yield
  finally:
    if not was_parsed:
      flags.FLAGS.unparse_flags()


@pytest.fixture(scope="module")
def export_dir(run):  # noqa: F811
  """The run exported the way t2t-serve --output_dir does when it finds no export."""
  path = os.path.join(str(run["root"]), "serve_export")
  with flag_values(problem=PROBLEM, model="transformer", hparams_set="transformer_tiny",
                   decode_hparams=DECODE_HPARAMS, data_dir=run["data_dir"]):
    t2t_serve.export_first(run["output_dir"], path)
  return path


@pytest.fixture(scope="module")
def model(export_dir):
  loaded = serving.ExportedModel(export_dir)
  loaded.warm_up()
  return loaded


class GatedModel:
  """The real model, except that a call waits while the gate is closed; `entered` is set
  once a call is waiting at the gate."""

  def __init__(self, model):
    self.model = model
    self.output_names, self.version, self.path = model.output_names, model.version, model.path
    self.gate = threading.Event()
    self.entered = threading.Event()
    self.batches = []

  def predict(self, texts):
    self.entered.set()
    assert self.gate.wait(WAIT)
    self.batches.append(list(texts))
    return self.model.predict(texts)


@contextlib.contextmanager
def running(model, **options):
  """A ModelServer on 127.0.0.1 (a free port) in a thread; yields (server, base_url)."""
  server = serving.ModelServer(model, serving.ServerOptions(model_name=NAME, **options))
  ready = threading.Event()
  state = {}

  def on_ready(host, port):
    state["url"] = "http://%s:%d" % (host, port)
    ready.set()

  def main():
    async def go():
      state["loop"] = asyncio.get_running_loop()
      state["stop"] = asyncio.Event()
      await server.serve("127.0.0.1", 0, on_ready=on_ready, stop=state["stop"])
    try:
      asyncio.run(go())
    finally:
      ready.set()

  thread = threading.Thread(target=main, daemon=True)
  thread.start()
  assert ready.wait(WAIT) and "url" in state
  try:
    yield server, state["url"]
  finally:
    state["loop"].call_soon_threadsafe(state["stop"].set)
    thread.join(WAIT)
    assert not thread.is_alive()


def http(url, body=None, raw=None):
  """(status, parsed JSON or text) of a GET (no body) or POST to a loopback URL."""
  assert url.startswith("http://127.0.0.1:")
  data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
  request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
  try:
    with urllib.request.urlopen(request, timeout=WAIT) as response:
      status, text = response.status, response.read().decode()
  except urllib.error.HTTPError as e:
    status, text = e.code, e.read().decode()
  try:
    return status, json.loads(text)
  except ValueError:
    return status, text


def predict_url(url):
  return url + "/v1/models/%s:predict" % NAME


def metric(url, name):
  """The value of one sample of /metrics (e.g. 't2t_serving_batch_size_count')."""
  status, text = http(url + "/metrics")
  assert status == 200
  match = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
  return float(match.group(1)) if match else None


def wait_until(condition):
  deadline = time.monotonic() + WAIT
  while not condition():
    assert time.monotonic() < deadline, "timed out"
    time.sleep(0.02)


def test_answers_match_the_exports_own_signature(model, export_dir):
  signature = tf.saved_model.load(export_dir).signatures["serving_default"]
  want = {k: v.numpy().tolist() for k, v in signature(inputs=tf.constant(LINES)).items()}
  with running(model) as (_, url):
    status, rows = http(predict_url(url), {"instances": LINES})
    assert status == 200, rows
    status, named = http(predict_url(url), {"instances": [{"inputs": LINES[0]}],
                                            "signature_name": "serving_default"})
    assert status == 200, named
    status, columns = http(url + "/v1/models/%s/versions/1:predict" % NAME,
                           {"inputs": LINES})
    assert status == 200, columns
    status_code, status = http(url + "/v1/models/" + NAME)
    metadata_code, metadata = http(url + "/v1/models/%s/metadata" % NAME)
    missing_code, missing = http(url + "/v1/models/other:predict", {"instances": LINES})
  predictions = rows["predictions"]
  assert [p["outputs"] for p in predictions] == [b.decode() for b in want["outputs"]]
  assert [p["beams"] for p in predictions] == [[b.decode() for b in beams]
                                               for beams in want["beams"]]
  np.testing.assert_allclose([p["scores"] for p in predictions], want["scores"], atol=1e-4)
  np.testing.assert_allclose([p["beam_scores"] for p in predictions], want["beam_scores"],
                             atol=1e-4)
  assert named["predictions"][0]["outputs"] == predictions[0]["outputs"]
  assert columns["outputs"]["outputs"] == [p["outputs"] for p in predictions]
  assert status_code == 200 and status == {"model_version_status": [{
      "version": "1", "state": "AVAILABLE", "status": {"error_code": "OK",
                                                       "error_message": ""}}]}
  assert metadata_code == 200
  signature_def = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
  assert set(signature_def["outputs"]) == {"outputs", "scores", "beams", "beam_scores"}
  assert missing_code == 404 and "error" in missing


class Held:
  """A server whose model is busy with a first request: what is sent meanwhile queues up."""

  def __init__(self, gated, server, url, pool):
    self.gated, self.server, self.url, self.pool = gated, server, url, pool

  def post(self, instances):
    return self.pool.submit(http, predict_url(self.url), {"instances": instances})

  def release_when_queued(self, count):
    wait_until(lambda: self.server.batcher.queued == count)
    self.gated.gate.set()


@contextlib.contextmanager
def holding_the_model(model, **options):
  """Yields a `Held` server whose model call for a first request (["1"]) waits until
  `release_when_queued`; one batch thread unless `options` say otherwise, so that what is
  sent meanwhile waits."""
  options.setdefault("num_batch_threads", 1)
  gated = GatedModel(model)
  with running(gated, **options) as (server, url):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
      held = Held(gated, server, url, pool)
      first = held.post(["1"])
      assert gated.entered.wait(WAIT)
      try:
        yield held
      finally:
        gated.gate.set()
      assert first.result(WAIT)[0] == 200


def test_concurrent_requests_are_decoded_in_one_batch(model):
  lines = ["1 1 0 1", "0 1 1 1", "1 0 0 1", "1 1 1 1"]
  with holding_the_model(model, max_batch_size=8, batch_timeout_micros=0) as held:
    waiting = [held.post([line]) for line in lines]
    held.release_when_queued(len(lines))
    answers = [f.result(WAIT) for f in waiting]
    count = metric(held.url, "t2t_serving_batch_size_count")
    ones = metric(held.url, 't2t_serving_batch_size_bucket{le="1.0"}')
  assert all(code == 200 for code, _ in answers), answers
  want = model.predict(lines)
  assert [a["predictions"][0]["outputs"] for _, a in answers] == [w["outputs"] for w in want]
  assert [sorted(b) for b in held.gated.batches] == [["1"], sorted(lines)]
  assert count == 2 and ones == 1  # /metrics shows the batch of 4


def test_inputs_are_grouped_by_length_when_more_wait_than_a_batch_takes(model):
  long_ = ["1 0 1 1 0 1 0 1 1 1", "0 1 1 0 1 0 1 1 0 0", "1 0 1 0 1 0 1 1 0"]  # 10, 10, 9
  short = ["1 0", "0 1 1", "1 1"]  # 2, 3, 2 words
  mixed = [x for pair in zip(long_, short) for x in pair]
  with holding_the_model(model, max_batch_size=3, batch_timeout_micros=0) as held:
    answer = held.post(mixed)
    held.release_when_queued(6)
    code, answer = answer.result(WAIT)
  assert code == 200
  assert [p["outputs"] for p in answer["predictions"]] == [
      w["outputs"] for w in model.predict(mixed)]
  # The oldest input's batch first, with the inputs closest to it in length.
  assert held.gated.batches[1:] == [long_, short]


def test_inputs_that_wait_together_are_split_between_free_batch_threads():
  # Two batch threads, both free: six inputs that arrive together go out as two batches of
  # three, each a run of them in length order (the oldest's run first), and both run at the
  # same time: each call waits at a barrier for the other, which one thread never passes.
  calls, both = [], threading.Barrier(2, timeout=WAIT)
  texts = ["a b c d e f g", "a", "a b c d e f", "a b", "a b c d e", "a b c"]

  def run_batch(batch):
    calls.append(list(batch))
    both.wait()
    return [t.upper() for t in batch]

  async def main():
    batcher = serving.batching.Batcher(
        run_batch, max_batch_size=8, batch_timeout_micros=0, num_batch_threads=2,
        length=lambda t: len(t.split()))
    batcher.start()
    results = await batcher.submit(texts)
    await batcher.close()
    return results

  assert asyncio.run(main()) == [t.upper() for t in texts]
  assert calls == [["a b c d e f g", "a b c d e f", "a b c d e"], ["a", "a b", "a b c"]]
  assert serving.batching.Batcher(run_batch).num_batch_threads == len(os.sched_getaffinity(0))


def test_a_batch_waits_for_its_timeout_only_while_more_requests_may_come():
  # A timeout far beyond any wait here: a batch must run as soon as `more_may_come` says no
  # request can join it, and not before while one can.
  calls, may_come = [], [True]

  def run_batch(batch):
    calls.append(list(batch))
    return [t.upper() for t in batch]

  async def main():
    batcher = serving.batching.Batcher(
        run_batch, max_batch_size=8, batch_timeout_micros=10 * WAIT * 10**6,
        num_batch_threads=1, more_may_come=lambda: may_come[0])
    batcher.start()
    first = asyncio.ensure_future(batcher.submit(["a"]))
    for _ in range(20):  # the batch loop runs and waits: another request may come
      await asyncio.sleep(0)
    assert not calls and batcher.open_requests == 1
    may_come[0] = False  # the second request is the last that can come
    results = await asyncio.wait_for(asyncio.gather(first, batcher.submit(["b", "c"])), WAIT)
    assert batcher.open_requests == 0
    await batcher.close()
    return results

  assert asyncio.run(main()) == [["A"], ["B", "C"]]
  assert calls == [["a", "b", "c"]]


def test_a_lone_client_is_answered_without_waiting_for_the_batch_timeout(model):
  # Its connection is the only one open and its request is in the batcher: nothing else can
  # come, so the batch runs at once instead of after the timeout (far beyond WAIT).
  with running(model, batch_timeout_micros=10 * WAIT * 10**6) as (_, url):
    code, answer = http(predict_url(url), {"instances": ["1 0 1 1"]})
  assert code == 200
  assert answer["predictions"][0]["outputs"] == model.predict(["1 0 1 1"])[0]["outputs"]


def test_intra_op_threads_divide_the_cores_between_the_batch_threads(monkeypatch):
  from t2t_lite.utils import hardware  # pylint: disable=g-import-not-at-top
  threading_api = tf.config.threading
  set_calls = []
  monkeypatch.setattr(hardware, "cpu_cores", lambda: 8)
  monkeypatch.setattr(threading_api, "set_intra_op_parallelism_threads", set_calls.append)
  assert serving.configure_threads(2) == 4
  assert serving.configure_threads(16) == 1  # at least one
  assert serving.configure_threads(0) == 1  # 0: one batch thread per core
  assert serving.configure_threads(2, intra_op_parallelism=3) == 3
  assert set_calls == [4, 1, 1, 3]

  def too_late(threads):
    raise RuntimeError("Intra op parallelism cannot be modified after initialization.")

  # Once TensorFlow has run in the process its pool stays; the server goes on with it.
  monkeypatch.setattr(threading_api, "set_intra_op_parallelism_threads", too_late)
  monkeypatch.setattr(threading_api, "get_intra_op_parallelism_threads", lambda: 2)
  assert serving.configure_threads(2) == 2


def test_a_batch_takes_all_that_wait_padded_to_an_allowed_size(model):
  lines = ["1 0 1 1 0 1 0 1 1 1", "0 1", "1 1 0", "0 0 1 1 0 1 1 0 1 0", "1 0 1"]
  with holding_the_model(model, max_batch_size=8, batch_timeout_micros=0,
                         allowed_batch_sizes=(1, 4, 8)) as held:
    answer = held.post(lines)
    held.release_when_queued(5)
    code, answer = answer.result(WAIT)
    sizes = metric(held.url, "t2t_serving_batch_size_sum")
  assert code == 200
  assert [p["outputs"] for p in answer["predictions"]] == [
      w["outputs"] for w in model.predict(lines)]
  # One call for inputs of 2 to 10 words, padded with copies of the shortest.
  assert held.gated.batches[1:] == [lines + ["0 1"] * 3]
  assert sizes == 1 + 5  # /metrics counts the inputs, not the padding


def test_a_full_queue_answers_503_at_once(model):
  with holding_the_model(model, max_batch_size=1, max_enqueued_batches=1) as held:
    second = held.post(["0 1"])
    wait_until(lambda: held.server.batcher.queued == 1)
    code, answer = http(predict_url(held.url), {"instances": ["1 1"]})
    too_many = http(predict_url(held.url), {"instances": ["1", "0"]})
    held.release_when_queued(1)
    assert second.result(WAIT)[0] == 200
    rejected = metric(held.url, 't2t_serving_requests_total{code="503"}')
  assert code == 503 and "queue is full" in answer["error"]
  assert rejected == 1
  assert too_many[0] == 400 and "queues at most 1" in too_many[1]["error"]


@pytest.mark.parametrize("body, message", [
    (b"{not json", "malformed JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"instance": ["1 0"]}', "unknown field"),
    (b"{}", "exactly one of"),
    (b'{"instances": ["1"], "inputs": ["1"]}', "exactly one of"),
    (b'{"instances": "1 0"}', "must be a list"),
    (b'{"instances": []}', "is empty"),
    (b'{"instances": ["1 0", 3]}', "instances[1] must be a string, not int"),
    (b'{"inputs": [null]}', "inputs[0] must be a string, not null"),
    (b'{"instances": [""]}', "instances[0] is an empty string"),
    (b'{"instances": ["  "]}', "instances[0] is an empty string"),
    (b'{"instances": ["1 0 1 0 1 0 1 0 1"]}', "is 9 words long; this server takes at most 8"),
    (b'{"instances": ["1 0"], "signature_name": "x"}', "unknown signature_name"),
    (b'{"instances": ["1 zebra 0"]}', "input 0: "),
    (b'{"instances": ["' + b"1 " * 600 + b'"]}', "over this server's limit of 1000 bytes"),
])
def test_bad_requests_answer_400_naming_the_problem(model, body, message):
  with running(model, max_input_length=8, max_request_bytes=1000) as (_, url):
    code, answer = http(predict_url(url), raw=body)
    assert (code, message in answer["error"]) == (400, True), answer
    assert http(predict_url(url), {"instances": ["1 0"]})[0] == 200  # still serving


def test_a_bad_input_fails_alone_in_its_batch(model):
  with holding_the_model(model, max_batch_size=8, batch_timeout_micros=0) as held:
    good = []
    for i, x in enumerate(("1 0", "0 1")):
      good.append(held.post([x]))
      wait_until(lambda i=i: held.server.batcher.queued == i + 1)
    bad = held.post(["1 zebra"])
    held.release_when_queued(3)
    answers = [f.result(WAIT) for f in good]
    bad_code, bad_answer = bad.result(WAIT)
  assert [code for code, _ in answers] == [200, 200]
  assert [a["predictions"][0]["outputs"] for _, a in answers] == [
      w["outputs"] for w in model.predict(["1 0", "0 1"])]
  assert bad_code == 400, bad_answer
  assert "input 0: unknown token in the input: zebra" in bad_answer["error"], bad_answer
  # Decoded together, then the failed batch retried in halves.
  assert held.gated.batches[1:] == [["1 0", "0 1", "1 zebra"], ["1 0", "0 1"], ["1 zebra"]]


def test_flag_and_export_errors(run, tmp_path):  # noqa: F811
  with flag_values(export_dir=None, output_dir=None):
    with pytest.raises(ConfigError, match="--export_dir or --output_dir is required"):
      t2t_serve.main(["t2t-serve"])
  with flag_values(export_dir=str(tmp_path), port=70000):
    with pytest.raises(ConfigError, match="--port=70000"):
      t2t_serve.main(["t2t-serve"])
  for name in ("num_batch_threads", "tensorflow_intra_op_parallelism"):
    with flag_values(export_dir=str(tmp_path), **{name: -1}):
      with pytest.raises(ConfigError, match="--%s must be >= 0" % name):
        t2t_serve.main(["t2t-serve"])
  for sizes in (["4", "8"], ["1", "x"], ["2", "1", "32"]):
    with flag_values(export_dir=str(tmp_path), allowed_batch_sizes=sizes):
      with pytest.raises(ConfigError, match="--allowed_batch_sizes="):
        t2t_serve.main(["t2t-serve"])
  with flag_values(export_dir=str(tmp_path / "none"), output_dir=None):
    with pytest.raises(serving.ExportNotFoundError, match="no SavedModel in"):
      t2t_serve.main(["t2t-serve"])
  with flag_values(export_dir=None, output_dir=str(tmp_path), model=None, problem=None):
    with pytest.raises(T2TUserError, match="no checkpoint"):
      t2t_serve.main(["t2t-serve"])
  # A run without an export is exported first, which needs --model.
  with flag_values(export_dir=None, output_dir=run["output_dir"], model=None, problem=None,
                   hparams_set="transformer_tiny"):
    with pytest.raises(ConfigError, match="give --model"):
      t2t_serve.main(["t2t-serve"])


def test_a_port_in_use_is_a_user_error(export_dir):
  with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    with flag_values(export_dir=export_dir, output_dir=None, host="127.0.0.1", port=port):
      with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1:%d" % port):
        t2t_serve.main(["t2t-serve"])


def test_versions_under_a_base_path(export_dir, tmp_path):
  os.symlink(export_dir, tmp_path / "3")
  os.makedirs(tmp_path / "1")  # not a SavedModel: skipped
  assert serving.resolve_export(str(tmp_path)) == (str(tmp_path / "3"), 3)


def test_serving_runs_tensorflows_own_kernels_unless_told_otherwise(model, tmp_path):
  environ = {}
  t2t_serve.set_serving_environment(environ)
  assert environ == {"TF_ENABLE_ONEDNN_OPTS": "0"}
  environ = {"TF_ENABLE_ONEDNN_OPTS": "1"}  # the user's setting stays
  t2t_serve.set_serving_environment(environ)
  assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}
  # An export that computes in bfloat16 says so (t2t-serve then warns where oneDNN is off).
  assert not model.computes_bfloat16

  class Halves(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(self, inputs):
      lengths = tf.cast(tf.strings.length(inputs), tf.bfloat16) * tf.constant(0.5, tf.bfloat16)
      return {"outputs": inputs, "scores": tf.cast(lengths, tf.float32)}

  module = Halves()
  tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
  halves = serving.ExportedModel(str(tmp_path))
  assert halves.computes_bfloat16
  assert halves.predict(["abcd"]) == [{"outputs": "abcd", "scores": 2.0}]


def test_sigterm_finishes_the_request_in_flight_and_exits_0(export_dir, script_env,
                                                            repo_root):
  proc = subprocess.Popen(
      [sys.executable, "-m", "t2t_lite.bin.t2t_serve", "--export_dir=" + export_dir,
       "--host=127.0.0.1", "--port=0", "--model_name=" + NAME,
       "--batch_timeout_micros=30000000", "--max_batch_size=8"],
      cwd=repo_root, env=script_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)
  try:
    line = proc.stdout.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+)/", line)
    assert match, line + proc.stderr.read() if proc.poll() is not None else line
    url = match.group(1)
    # A connection open without a request (a client that may still send one) and the 30 s
    # batch timeout hold the request in the queue until SIGTERM flushes it.
    idle = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), WAIT)
    with idle, concurrent.futures.ThreadPoolExecutor(1) as pool:
      waiting = pool.submit(http, predict_url(url), {"instances": ["1 0 1 1"]})
      wait_until(lambda: metric(url, "t2t_serving_queued_inputs") == 1)
      proc.send_signal(signal.SIGTERM)
      code, answer = waiting.result(WAIT)
    assert proc.wait(WAIT) == 0, proc.stderr.read()
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
  assert code == 200 and "outputs" in answer["predictions"][0], answer
  assert "stopped" in proc.stdout.read()
