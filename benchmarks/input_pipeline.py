"""Input pipeline speed: how fast t2t-datagen writes and how fast Problem.dataset reads.

    python -m benchmarks.input_pipeline

(a) t2t-datagen on algorithmic_reverse_binary40 (111,000 examples: train, dev and the long
    test split): examples/s, against a target of 50,000 examples/s (ratio given), both wall
    time and CPU time of the process (the CPU-time rate is what a machine shared with other
    jobs still shows).
(b) tokens/s that `problem.dataset("train")` delivers for algorithmic_reverse_binary40 with
    transformer_small's batching (token batches of 4096, max_length 256, buckets from 8 by
    1.1): see `pipeline_tokens_per_second`, which the trainer benchmark reuses to compare with
    the rate a training step consumes. Reading includes the check of every shard
    (`t2t_lite.data.integrity`: the bytes of the records read must fill the file).
"""
import os
import shutil
import sys
import tempfile

if __package__ in (None, ""):  # `python benchmarks/input_pipeline.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

DATAGEN_TARGET = 50000.0
PROBLEM = "algorithmic_reverse_binary40"


def _registrations():
  import problems  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  try:
    import t2t_lite.models  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  except ImportError:
    pass


def datagen_examples_per_second(problem_name=PROBLEM, data_dir=None):
  """Generates a problem's data into a fresh directory; returns a dict of figures."""
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  from t2t_lite.data import generator_utils  # pylint: disable=g-import-not-at-top
  _registrations()
  own_dir = data_dir is None
  data_dir = data_dir or tempfile.mkdtemp(prefix="t2t_bench_datagen_")
  try:
    problem = registry.problem(problem_name)
    progress = generator_utils.Progress(problem_name, every_s=1e9)
    problem.datagen_progress = progress
    wall, cpu, _ = common.timed(lambda: problem.generate_data(data_dir, data_dir))
    return {"examples": progress.count, "seconds": wall, "cpu_seconds": cpu,
            "examples_per_second": progress.count / wall,
            "examples_per_cpu_second": progress.count / max(cpu, 1e-9), "data_dir": data_dir}
  finally:
    if own_dir:
      shutil.rmtree(data_dir, ignore_errors=True)


def batching_hparams(hparams_set="transformer_small", batch_size=4096):
  """The hparams set's batching hparams (basic_params1's defaults when it is not there)."""
  from t2t_lite import common_hparams  # pylint: disable=g-import-not-at-top
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  _registrations()
  try:
    hp = registry.hparams(hparams_set)
  except Exception:  # pylint: disable=broad-except
    hp = common_hparams.basic_params1()
  if batch_size is not None:
    hp.batch_size = batch_size
  return hp


def pipeline_tokens_per_second(problem_name=PROBLEM, hparams=None, data_dir=None,
                               num_batches=400, warmup_batches=50, seed=None):
  """Reads `num_batches` training batches as fast as possible.

  Args:
    problem_name: the problem (its data is generated into a temporary data_dir if
      data_dir is None or lacks it).
    hparams: batching hparams (default: transformer_small's, batch_size 4096).
    data_dir: where the data is.
    num_batches: batches timed (after `warmup_batches`).
    seed: passed to dataset() (a seed makes the order deterministic, as the trainer does).

  Returns:
    A dict: tokens_per_second (non-padding input + target ids), padded_tokens_per_second
    (the batch shapes' sizes, what a model computes on), examples_per_second,
    batches_per_second, mean_batch_tokens (padded), seconds.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top

  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  from t2t_lite.data import ModeKeys  # pylint: disable=g-import-not-at-top
  _registrations()
  problem = registry.problem(problem_name)
  hparams = hparams if hparams is not None else batching_hparams()
  own_dir = data_dir is None
  data_dir = data_dir or tempfile.mkdtemp(prefix="t2t_bench_pipeline_")
  try:
    if not problem.data_exists(data_dir, ["train"]):
      problem.generate_data(data_dir, data_dir)
    ds = problem.dataset(ModeKeys.TRAIN, data_dir, hparams, seed=seed)
    it = iter(ds)
    for _ in range(warmup_batches):
      next(it)

    def read():
      tokens = padded = examples = 0
      for _ in range(num_batches):
        batch = next(it)
        for name in ("inputs", "targets"):
          if name in batch:
            array = batch[name]._numpy()  # pylint: disable=protected-access
            tokens += int(np.count_nonzero(array))
            padded += array.size
        examples += int(batch["targets"].shape[0])
      return tokens, padded, examples

    seconds, _, (tokens, padded, examples) = common.timed(read)
    return {"tokens_per_second": tokens / seconds, "padded_tokens_per_second": padded / seconds,
            "examples_per_second": examples / seconds,
            "batches_per_second": num_batches / seconds,
            "mean_batch_tokens": padded / num_batches / max(1, len(ds.element_spec)),
            "seconds": seconds}
  finally:
    if own_dir:
      shutil.rmtree(data_dir, ignore_errors=True)


def run():
  """The rows for BENCHMARKS.md."""
  rows = []
  gen = datagen_examples_per_second()
  rate = gen["examples_per_second"]
  rows.append(common.row(
      "t2t-datagen %s" % PROBLEM, rate, "examples/s", ">= %d examples/s" % DATAGEN_TARGET,
      rate >= DATAGEN_TARGET,
      "%.2fx the 50k/s target; %d examples in %.2f s wall; %.0f examples per CPU-second "
      "(%.2fx)" % (rate / DATAGEN_TARGET, gen["examples"], gen["seconds"],
                   gen["examples_per_cpu_second"],
                   gen["examples_per_cpu_second"] / DATAGEN_TARGET)))
  for seed, label in ((None, "default order"), (1234, "deterministic, seed 1234")):
    pipe = pipeline_tokens_per_second(seed=seed)
    rows.append(common.row(
        "dataset(train) %s, transformer_small batching (%s)" % (PROBLEM, label),
        pipe["tokens_per_second"], "tokens/s", "reported (the trainer benchmark compares)",
        True,
        "non-padding input+target ids; %.0f padded tokens/s, %.0f examples/s, %.1f batches/s"
        % (pipe["padded_tokens_per_second"], pipe["examples_per_second"],
           pipe["batches_per_second"])))
  return rows


if __name__ == "__main__":
  sys.exit(common.main(__doc__, run))
