"""Serving: t2t-serve (dynamic batching grouped by length) against the server a Keras user
would write instead (one model call per request behind a plain aiohttp handler), same
SavedModel, same HTTP library, side by side in one run.

    python -m benchmarks.serve                         # a random-weight transformer_tiny export
    python -m benchmarks.serve --export_dir=DIR        # an existing decoder export
    python -m benchmarks.serve --max_requests=40 --max_seconds=3   # a short smoke run (~40 s)

Each server runs in its own process on 127.0.0.1 (a free port); this process is the load: 1, 8
and 32 concurrent clients, each sending one input per request (algorithmic inputs of 4 to 40
symbols, the same sequence for both servers) and the next as soon as the answer comes, for
--max_requests requests or --max_seconds seconds per cell, whichever ends first, after a
warm-up. Rows: requests per second, p50 and p99 latency, and the throughput ratio
t2t-serve / per-request server at each concurrency. Both answer the same inputs with the same
outputs (checked). Everything is loopback and bounded; nothing else is contacted.

The export: --export_dir, else transformer_tiny (random weights, so every decode runs to its
extra_length) on algorithmic_reverse_binary40 exported with --decode_hparams
(default beam_size=1,extra_length=20) to a temporary directory.
"""
import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

from benchmarks import common  # noqa: E402

CONCURRENCY = (1, 8, 32)
PROBLEM = "algorithmic_reverse_binary40"
NAME = "bench"
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


def per_request_server(export_dir, host="127.0.0.1"):
  """The baseline: a plain aiohttp handler, one signature call per request (in a thread so
  the event loop keeps taking requests), answering TF Serving's row format."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from aiohttp import web  # pylint: disable=g-import-not-at-top
  serve = tf.saved_model.load(export_dir).signatures["serving_default"]

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
    app = web.Application()
    app.router.add_post("/v1/models/%s:predict" % NAME, predict)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    print("serving at http://%s:%d/" % runner.addresses[0][:2], flush=True)
    await asyncio.Event().wait()

  asyncio.run(main())


def start(command):
  """Starts a server process; returns (process, base URL) once it listens."""
  proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          cwd=_ROOT)
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


def percentile(values, q):
  ordered = sorted(values)
  return ordered[min(len(ordered) - 1, int(q / 100.0 * len(ordered)))]


def run(export_dir=None, max_requests=200, max_seconds=15.0,
        decode_hparams="beam_size=1,extra_length=20"):
  """The rows (see common.row); without `export_dir`, a random-weight export is made in a
  temporary directory."""
  if export_dir is None:
    with tempfile.TemporaryDirectory() as tmp:
      return _run(make_export(os.path.join(tmp, "export"), decode_hparams), max_requests,
                  max_seconds)
  return _run(export_dir, max_requests, max_seconds)


def _run(export_dir, max_requests, max_seconds):
  rng = random.Random(0)
  inputs = [" ".join(rng.choice("01") for _ in range(rng.randint(4, 40)))
            for _ in range(max_requests + 64)]
  servers = {
      "t2t-serve": [sys.executable, "-m", "t2t_lite.bin.t2t_serve", "--export_dir=" + export_dir,
                    "--port=0", "--model_name=" + NAME, "--max_input_length=0"],
      "per-request server": [sys.executable, "-m", "benchmarks.serve",
                             "--per_request_server=" + export_dir],
  }
  results, answers = {}, {}
  for name, command in servers.items():
    proc, url = start(command)
    try:
      asyncio.run(load(url, inputs[:8], 2, 8, max_seconds))  # warm-up
      for clients in CONCURRENCY:
        latencies, seconds, outputs = asyncio.run(
            load(url, inputs[:max_requests], clients, max_requests, max_seconds))
        results[name, clients] = (len(latencies) / seconds, latencies)
        answers.setdefault(name, {}).update(outputs)
    finally:
      proc.terminate()
      proc.wait(30)
  shared = set(answers["t2t-serve"]) & set(answers["per-request server"])
  same = sum(answers["t2t-serve"][t] == answers["per-request server"][t] for t in shared)
  rows = []
  for clients in CONCURRENCY:
    for name in servers:
      throughput, latencies = results[name, clients]
      details = "%d requests" % len(latencies)
      rows.append(common.row("serve: %s, %d clients, requests/s" % (name, clients),
                             throughput, "req/s", "-", True, details))
      rows.append(common.row("serve: %s, %d clients, p50 latency" % (name, clients),
                             1000 * percentile(latencies, 50), "ms", "-", True))
      rows.append(common.row("serve: %s, %d clients, p99 latency" % (name, clients),
                             1000 * percentile(latencies, 99), "ms", "-", True))
    ratio = results["t2t-serve", clients][0] / results["per-request server", clients][0]
    rows.append(common.row("serve: t2t-serve / per-request throughput, %d clients" % clients,
                           ratio, "x", ">= 1" if clients > 1 else "-",
                           ratio >= 1 or clients == 1))
  rows.append(common.row("serve: same outputs from both servers", same / max(len(shared), 1),
                         "fraction", "1.0", same == len(shared),
                         "%d inputs answered by both" % len(shared)))
  return rows


def _parser():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--export_dir", default=None)
  parser.add_argument("--decode_hparams", default="beam_size=1,extra_length=20")
  parser.add_argument("--max_requests", type=int, default=200)
  parser.add_argument("--max_seconds", type=float, default=15.0)
  parser.add_argument("--per_request_server", default=None, help=argparse.SUPPRESS)
  return parser


def parse_args(args):
  """run()'s keyword arguments from command-line arguments (what run_all passes on)."""
  a = _parser().parse_args(args)
  return {"export_dir": a.export_dir, "max_requests": a.max_requests,
          "max_seconds": a.max_seconds, "decode_hparams": a.decode_hparams}


def main(argv):
  args = _parser().parse_args(argv[1:])
  if args.per_request_server:
    per_request_server(args.per_request_server)
    return 0
  print(common.machine_description())
  common.print_rows(run(args.export_dir, args.max_requests, args.max_seconds,
                        args.decode_hparams))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
