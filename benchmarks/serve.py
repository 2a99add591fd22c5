"""Serving: t2t-serve (dynamic batching) against the server a Keras user would write instead
(one model call per request behind a plain aiohttp handler), same SavedModel, same HTTP
library, side by side in one run. The per-request server runs twice: with TensorFlow's and
asyncio's defaults, and "tuned", set as t2t-serve is by default (a thread for the model calls
per core, each with one intra-op thread, as t2t-serve's batch threads; TensorFlow's own CPU
kernels instead of oneDNN's): its fastest setting, against which the target is judged.
t2t-serve also runs with oneDNN's kernels, which its default turns off.

    python -m benchmarks.serve --export_dir=/tmp/demo_export   # the demo's trained model
    python -m benchmarks.serve                         # a random-weight transformer_tiny export
    python -m benchmarks.serve --max_requests=40 --max_seconds=3 --mixed_requests=200  # smoke

Each server runs in its own process on 127.0.0.1 (a free port); this process is the load: 1, 8
and 32 concurrent clients, each sending one input per request (algorithmic inputs of 4 to 40
symbols, the same sequence for every server) and the next as soon as the answer comes, for
--max_requests requests or --max_seconds seconds per cell, whichever ends first; the servers
run throughout and their cells alternate, so a shared machine's load falls on all alike.
Before the cells each server gets the same warm-up: --warmup_requests other inputs at each
concurrency (first calls at new shapes prepare kernels, so a cold server measures that).
The cells run --repeats times (default 3), each time on inputs of another seed; rows give
the median over the runs (the ratios: the median of each run's ratio, whose cells ran next to
each other) and list each run's figure: requests per second, p50 and p99 latency, the batch
sizes t2t-serve formed (from its /metrics), and the throughput ratios t2t-serve /
per-request server at each concurrency.
t2t-serve and the per-request server answer the same inputs with the same outputs (checked).

Then --mixed_requests requests (default 10,000) go to t2t-serve from 32 clients, one in ten
bad (malformed JSON, a wrong field, a non-string, an empty string, an input over
--max_input_length, a body over --max_request_bytes, an unknown token), mixed with good ones
answered by the per-request server above: every good one must come back 200 with that
server's answer, every bad one 400 naming its problem; anything else is lost or wrong.

Targets (the issue's): at 32 clients >= 4x the requests/s of the per-request server (at its
fastest setting); at 8 clients t2t-serve's p99 latency <= 2x its p50; nothing lost or wrong
in the mixed run.
Everything is loopback and bounded; nothing else is contacted.

The export: --export_dir (the demo's: `bash scripts/quickstart.sh demo`, then export its run
with t2t-decoder --export_saved_model), else transformer_tiny (random weights, so every
decode runs to its extra_length) on algorithmic_reverse_binary40 exported with
--decode_hparams (default beam_size=1,extra_length=20) to a temporary directory.
"""
import argparse
import asyncio
import collections
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

from benchmarks import common  # noqa: E402

CONCURRENCY = (1, 8, 32)
TARGET_SPEEDUP = 4.0  # t2t-serve / per-request requests/s at 32 clients
MAX_TAIL = 2.0
SEED = 11  # the first run's inputs; run k draws seed SEED + k  # t2t-serve's p99 / p50 latency at 8 clients
MAX_INPUT_LENGTH = 64  # t2t-serve's limits in the run (the inputs have 4 to 40 symbols)
MAX_REQUEST_BYTES = 1 << 16
PROBLEM = "algorithmic_reverse_binary40"
NAME = "bench"
TUNED = "per-request server, tuned"
ONEDNN = "t2t-serve with oneDNN"
READY = re.compile(r"at (http://127\.0\.0\.1:\d+)")


def make_export(export_dir, decode_hparams):
  """transformer_tiny with random weights, exported as t2t-decoder --export_saved_model does."""
  import keras  # pylint: disable=g-import-not-at-top
  import problems  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  import t2t_lite.models  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from t2t_lite import decoding  # pylint: disable=g-import-not-at-top
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  from t2t_lite.task import Task  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  task = Task(PROBLEM, "transformer", registry.hparams("transformer_tiny"), None)
  model = task.build_model(inference=True)
  decoding.export_decoder(task, model, decoding.decode_hparams(decode_hparams), export_dir)
  return export_dir


def per_request_server(export_dir, host="127.0.0.1", intra_op_threads=0, call_threads=0):
  """The baseline: a plain aiohttp handler, one signature call per request (in a thread so
  the event loop keeps taking requests), answering TF Serving's row format; TensorFlow's
  intra-op threads as given (0: its default), and `call_threads` threads for the calls (0:
  asyncio's default pool, min(32, cores + 4))."""
  import concurrent.futures  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from aiohttp import web  # pylint: disable=g-import-not-at-top
  from t2t_lite.serving import model as serving_model  # pylint: disable=g-import-not-at-top
  if intra_op_threads:
    tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
  # What its user does for an export with tensorflow-text's ops (import it first), only then.
  serve = serving_model.load_saved_model(export_dir).signatures["serving_default"]

  def call(texts):
    out = serve(inputs=tf.constant(texts))
    return [{"outputs": o.decode(), "scores": float(s)}
            for o, s in zip(out["outputs"].numpy(), out["scores"].numpy())]

  call([""])

  async def predict(request):
    body = await request.json()
    loop = asyncio.get_running_loop()
    return web.json_response({"predictions": await loop.run_in_executor(
        None, call, body["instances"])})

  async def main():
    if call_threads:
      asyncio.get_running_loop().set_default_executor(
          concurrent.futures.ThreadPoolExecutor(call_threads))
    app = web.Application()
    app.router.add_post("/v1/models/%s:predict" % NAME, predict)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    print("serving at http://%s:%d/" % runner.addresses[0][:2], flush=True)
    await asyncio.Event().wait()

  asyncio.run(main())


def start(command, environment=None):
  """Starts a server process (with `environment`: variables to set, None values to unset);
  returns (process, base URL) once it listens."""
  env = dict(os.environ)
  for name, value in (environment or {}).items():
    if value is None:
      env.pop(name, None)
    else:
      env[name] = value
  proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          cwd=_ROOT, env=env)
  line = proc.stdout.readline()
  match = READY.search(line)
  if not match:
    proc.kill()
    raise RuntimeError("the server did not start: %r" % line)
  return proc, match.group(1)


async def load(url, inputs, clients, max_requests, max_seconds):
  """`clients` loops sending one input per request; (latencies, seconds, outputs by input)."""
  import aiohttp  # pylint: disable=g-import-not-at-top
  latencies, answers = [], {}
  queue = list(inputs)
  deadline = time.monotonic() + max_seconds
  connector = aiohttp.TCPConnector(limit=clients)
  async with aiohttp.ClientSession(connector=connector) as session:

    async def client():
      while queue and len(latencies) < max_requests and time.monotonic() < deadline:
        text = queue.pop()
        started = time.monotonic()
        async with session.post(url + "/v1/models/%s:predict" % NAME,
                                json={"instances": [text]}) as response:
          answer = await response.json()
          assert response.status == 200, answer
        latencies.append(time.monotonic() - started)
        answers[text] = answer["predictions"][0]["outputs"]

    started = time.monotonic()
    await asyncio.gather(*[client() for _ in range(clients)])
    return latencies, time.monotonic() - started, answers


def batch_sizes(url):
  """(model calls, inputs decoded) so far, from t2t-serve's /metrics."""
  with urllib.request.urlopen(url + "/metrics", timeout=30) as response:
    text = response.read().decode()
  values = []
  for name in ("t2t_serving_batch_size_count", "t2t_serving_batch_size_sum"):
    match = re.search(r"^%s (\S+)$" % name, text, re.M)
    values.append(float(match.group(1)) if match else 0.0)
  return tuple(values)


def bad_requests(max_input_length, max_request_bytes, unknown_token=True):
  """(body bytes, a phrase the 400's error must hold), one of each kind of bad request (an
  unknown token only with `unknown_token`: a vocabulary of symbols has them)."""
  bad = [
      (b"{not json", "malformed JSON"),
      (b'{"instance": ["1 0"]}', "unknown field"),
      (b'{"instances": ["1 0", 3]}', "must be a string"),
      (b'{"instances": [""]}', "empty string"),
      (json.dumps({"instances": [" ".join(["1"] * (max_input_length + 1))]}).encode(),
       "this server takes at most %d" % max_input_length),
      (json.dumps({"instances": ["1 0 " * (max_request_bytes // 4 + 1)]}).encode(),
       "over this server's limit"),
  ]
  if unknown_token:
    bad.append((b'{"instances": ["1 zebra 0"]}', "unknown token"))
  return bad


async def mixed_load(url, requests, clients, max_seconds):
  """Sends `requests` ((body, expected status, what the answer must hold)) from `clients`
  loops; (counts by outcome, seconds)."""
  import aiohttp  # pylint: disable=g-import-not-at-top
  counts = collections.Counter()
  queue = collections.deque(requests)
  deadline = time.monotonic() + max_seconds
  connector = aiohttp.TCPConnector(limit=clients)
  timeout = aiohttp.ClientTimeout(total=60)
  async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

    async def client():
      while queue and time.monotonic() < deadline:
        body, status, want = queue.popleft()
        kind = "good" if status == 200 else "bad"
        try:
          async with session.post(url + "/v1/models/%s:predict" % NAME, data=body,
                                  headers={"Content-Type": "application/json"}) as response:
            answer = await response.json()
            code = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
          counts["lost"] += 1
          continue
        if code != status:
          counts["lost" if code >= 500 else "wrong"] += 1
        elif status == 200:
          counts["right " + kind if answer["predictions"][0]["outputs"] == want
                 else "wrong"] += 1
        else:
          counts["right " + kind if want in answer.get("error", "") else "wrong"] += 1

    started = time.monotonic()
    await asyncio.gather(*[client() for _ in range(clients)])
    counts["not sent"] = len(queue)
    return counts, time.monotonic() - started


def percentile(values, q):
  ordered = sorted(values)
  return ordered[min(len(ordered) - 1, int(q / 100.0 * len(ordered)))]


def run(export_dir=None, max_requests=200, max_seconds=15.0,
        decode_hparams="beam_size=1,extra_length=20", warmup_requests=200,
        mixed_requests=10000, mixed_seconds=600.0, repeats=3, inputs_file=None,
        label="serve"):
  """The rows (see common.row), named "`label`: ..."; without `export_dir`, a random-weight
  export is made in a temporary directory. `inputs_file`: the inputs are its non-empty lines
  (free text, which has no unknown token: the mixed run leaves that bad request out), not
  algorithmic ones."""
  lines = None
  if inputs_file:
    with open(inputs_file, encoding="utf-8") as f:
      lines = [line.strip() for line in f if line.strip()]
  args = (max_requests, max_seconds, warmup_requests, mixed_requests, mixed_seconds, repeats,
          lines, label)
  if export_dir is None:
    with tempfile.TemporaryDirectory() as tmp:
      return _run(make_export(os.path.join(tmp, "export"), decode_hparams), *args)
  return _run(export_dir, *args)


def _inputs(seed, count, lines=None):
  rng = random.Random(seed)
  if lines:
    return [rng.choice(lines) for _ in range(count)]
  return [" ".join(rng.choice("01") for _ in range(rng.randint(4, 40))) for _ in range(count)]


def _run(export_dir, max_requests, max_seconds, warmup_requests, mixed_requests,
         mixed_seconds, repeats, lines, label):
  warm = _inputs(-1, warmup_requests, lines)
  t2t_serve = [sys.executable, "-m", "t2t_lite.bin.t2t_serve", "--export_dir=" + export_dir,
               "--port=0", "--model_name=" + NAME, "--max_input_length=%d" % MAX_INPUT_LENGTH,
               "--max_request_bytes=%d" % MAX_REQUEST_BYTES]
  per_request = [sys.executable, "-m", "benchmarks.serve", "--per_request_server=" + export_dir]
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  servers = {  # name: (command, environment)
      "t2t-serve": (t2t_serve, None),
      # TensorFlow's defaults: what a Keras user's server runs with.
      "per-request server": (per_request, {"TF_ENABLE_ONEDNN_OPTS": None}),
      # The same server set as t2t-serve is (a thread for the calls and an intra-op thread
      # per core; TensorFlow's own kernels, not oneDNN's): its fastest setting, and the fair
      # one.
      TUNED: (per_request + ["--per_request_intra_op_threads=1",
                             "--per_request_call_threads=%d" % cores],
              {"TF_ENABLE_ONEDNN_OPTS": "0"}),
      # t2t-serve's default of TensorFlow's own kernels, against oneDNN's.
      ONEDNN: (t2t_serve, {"TF_ENABLE_ONEDNN_OPTS": "1"}),
  }
  # results[name, clients]: one (requests/s, latencies) per repeat; batches likewise.
  results, answers, batches = collections.defaultdict(list), {}, collections.defaultdict(list)
  procs, urls = [], {}
  try:  # the servers run throughout; each cell loads one of them, the others idle
    for name, (command, environment) in servers.items():
      proc, urls[name] = start(command, environment)
      procs.append(proc)
    for clients in CONCURRENCY:  # the same warm-up for each
      for name, url in urls.items():
        asyncio.run(load(url, warm, clients, warmup_requests, max_seconds))
    for repeat in range(repeats):  # inputs of another seed each time, the same for all
      # Seeds 11, 12, ...: the probes that chose t2t-serve's settings drew inputs of seed 0.
      measured = _inputs(SEED + repeat, max_requests, lines)
      for clients in CONCURRENCY:  # side by side at each concurrency
        for name, url in urls.items():
          before = batch_sizes(url) if name.startswith("t2t-serve") else None
          latencies, seconds, outputs = asyncio.run(
              load(url, measured, clients, max_requests, max_seconds))
          results[name, clients].append((len(latencies) / seconds, latencies))
          answers.setdefault(name, {}).update(outputs)
          if before is not None:
            after = batch_sizes(url)
            batches[name, clients].append(
                (after[1] - before[1]) / max(after[0] - before[0], 1))
    if mixed_requests:  # good inputs with the per-request server's answers
      mixed = _mixed_run(urls["t2t-serve"], answers["per-request server"], mixed_requests,
                         mixed_seconds, label, unknown_token=lines is None)
  finally:
    for proc in procs:
      proc.terminate()
    for proc in procs:
      proc.wait(30)
  shared = set(answers["t2t-serve"]) & set(answers["per-request server"])
  same = sum(answers["t2t-serve"][t] == answers["per-request server"][t] for t in shared)

  def each(name, clients, figure):
    return [figure(throughput, latencies) for throughput, latencies in results[name, clients]]

  def ratios(a, b, clients):  # per repeat: the cells of one repeat ran next to each other
    return [x / y for x, y in zip(each(a, clients, lambda t, _: t),
                                  each(b, clients, lambda t, _: t))]

  def spread(values):
    return "median of %d: %s" % (len(values), ", ".join("%.3g" % v for v in values))

  rows = []
  for clients in CONCURRENCY:
    for name in servers:
      throughput = each(name, clients, lambda t, _: t)
      details = "%d requests per run, %s" % (max_requests, spread(throughput))
      if batches[name, clients]:
        details += "; %.1f inputs per model call" % statistics.median(batches[name, clients])
      rows.append(common.row("%s: %s, %d clients, requests/s" % (label, name, clients),
                             statistics.median(throughput), "req/s", "-", True, details))
      for q in (50, 99):
        rows.append(common.row(
            "%s: %s, %d clients, p%d latency" % (label, name, clients, q),
            statistics.median(each(name, clients, lambda _, lat, q=q: 1000 * percentile(lat, q))),
            "ms", "-", True))
    ratio = ratios("t2t-serve", "per-request server", clients)
    rows.append(common.row("%s: t2t-serve / per-request throughput, %d clients" % (label, clients),
                           statistics.median(ratio), "x", "-", True,
                           "TensorFlow's defaults; " + spread(ratio)))
    # The target is judged against the per-request server at its fastest.
    ratio = ratios("t2t-serve", TUNED, clients)
    target = TARGET_SPEEDUP if clients == max(CONCURRENCY) else None
    rows.append(common.row(
        "%s: t2t-serve / per-request throughput (tuned), %d clients" % (label, clients),
        statistics.median(ratio), "x", ">= %g" % target if target else "-",
        target is None or statistics.median(ratio) >= target, spread(ratio)))
    ratio = ratios("t2t-serve", ONEDNN, clients)
    rows.append(common.row("%s: t2t-serve / t2t-serve with oneDNN, %d clients" % (label, clients),
                           statistics.median(ratio), "x", "-", True,
                           "TF_ENABLE_ONEDNN_OPTS=0 (default) / =1; " + spread(ratio)))
  tails = each("t2t-serve", 8, lambda _, lat: percentile(lat, 99) / percentile(lat, 50))
  rows.append(common.row("%s: t2t-serve p99 / p50 latency, 8 clients" % label, statistics.median(tails), "x",
                         "<= %g" % MAX_TAIL, statistics.median(tails) <= MAX_TAIL, spread(tails)))
  rows.append(common.row("%s: same outputs from both servers" % label, same / max(len(shared), 1),
                         "fraction", "1.0", same == len(shared),
                         "%d inputs answered by both" % len(shared)))
  if mixed_requests:
    rows.append(mixed)
  return rows


def _mixed_run(url, reference, count, max_seconds, label, unknown_token=True):
  """The row of `count` requests to t2t-serve, one in ten bad, from 32 clients."""
  rng = random.Random(1)
  good = sorted(reference)
  bad = bad_requests(MAX_INPUT_LENGTH, MAX_REQUEST_BYTES, unknown_token)
  requests = []
  for i in range(count):
    if i % 10 == 9:
      body, phrase = bad[(i // 10) % len(bad)]
      requests.append((body, 400, phrase))
    else:
      text = rng.choice(good)
      requests.append((json.dumps({"instances": [text]}).encode(), 200, reference[text]))
  rng.shuffle(requests)
  counts, seconds = asyncio.run(mixed_load(url, requests, max(CONCURRENCY), max_seconds))
  right = counts["right good"] + counts["right bad"]
  return common.row(
      "%s: %d requests, 10%% bad, %d clients: answered right" % (label, count, max(CONCURRENCY)),
      right / count, "fraction", "1.0", right == count,
      "%d good answered right, %d bad answered 400, %d wrong, %d lost, %d not sent in "
      "%.0f s; %.1f req/s" % (counts["right good"], counts["right bad"], counts["wrong"],
                              counts["lost"], counts["not sent"], seconds,
                              (count - counts["not sent"]) / seconds))


def _parser():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--export_dir", default=None)
  parser.add_argument("--decode_hparams", default="beam_size=1,extra_length=20")
  parser.add_argument("--max_requests", type=int, default=200)
  parser.add_argument("--max_seconds", type=float, default=15.0)
  parser.add_argument("--warmup_requests", type=int, default=200)
  parser.add_argument("--mixed_requests", type=int, default=10000)
  parser.add_argument("--mixed_seconds", type=float, default=600.0)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--inputs_file", default=None,
                      help="draw the inputs from this file's lines (free text)")
  parser.add_argument("--per_request_server", default=None, help=argparse.SUPPRESS)
  parser.add_argument("--per_request_intra_op_threads", type=int, default=0,
                      help=argparse.SUPPRESS)
  parser.add_argument("--per_request_call_threads", type=int, default=0,
                      help=argparse.SUPPRESS)
  return parser


def parse_args(args):
  """run()'s keyword arguments from command-line arguments (what run_all passes on)."""
  parser = _parser()
  a = parser.parse_args(args)
  a.export_dir = a.export_dir and os.path.expanduser(a.export_dir)
  a.inputs_file = a.inputs_file and os.path.expanduser(a.inputs_file)
  if a.max_requests < 1 or a.max_seconds <= 0 or a.mixed_seconds <= 0:
    parser.error("--max_requests must be >= 1, --max_seconds and --mixed_seconds > 0")
  if a.warmup_requests < 0 or a.mixed_requests < 0:
    parser.error("--warmup_requests and --mixed_requests must be >= 0")
  if a.repeats < 1:
    parser.error("--repeats must be >= 1")
  if a.export_dir and not os.path.exists(os.path.join(a.export_dir, "saved_model.pb")):
    parser.error("--export_dir=%s holds no saved_model.pb" % a.export_dir)
  if a.inputs_file and not os.path.isfile(a.inputs_file):
    parser.error("--inputs_file=%s is not a file" % a.inputs_file)
  return {"export_dir": a.export_dir, "inputs_file": a.inputs_file,
          "max_requests": a.max_requests,
          "max_seconds": a.max_seconds, "decode_hparams": a.decode_hparams,
          "warmup_requests": a.warmup_requests, "mixed_requests": a.mixed_requests,
          "mixed_seconds": a.mixed_seconds, "repeats": a.repeats}


def main(argv):
  args = _parser().parse_args(argv[1:])
  if args.per_request_server:
    per_request_server(args.per_request_server,
                       intra_op_threads=args.per_request_intra_op_threads,
                       call_threads=args.per_request_call_threads)
    return 0
  kwargs = parse_args(argv[1:])
  print(common.machine_description())
  common.print_rows(run(**kwargs))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
