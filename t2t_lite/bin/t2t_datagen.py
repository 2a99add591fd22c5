"""t2t-datagen: write a problem's data (sharded TFRecords and vocabularies) into --data_dir.

    t2t-datagen --problem=algorithmic_reverse_binary40 --data_dir=~/t2t_data
    t2t-datagen --problem=tiny_algo,languagemodel_python_stdlib_bytes --data_dir=~/t2t_data
    t2t-datagen --problem=my_problem --data_dir=~/t2t_data --t2t_usr_dir=~/my_problems

Complete shards already in --data_dir are kept (rerun after an interruption to finish the
missing ones, or after deleting a shard that reading reported corrupt); --overwrite deletes the
problem's shards and vocabularies first. --random_seed,
when given, seeds the generation (otherwise each problem's own `random_seed`, the one
`t2t-trainer --generate_data` uses too). Prints the examples written, examples/s and the files.
"""
import os
import sys
import time

from t2t_lite.bin import common


def _check_writable(data_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from t2t_lite.errors import ConfigError  # pylint: disable=g-import-not-at-top
  probe = os.path.join(data_dir, ".t2t_datagen_write_test")
  try:
    tf.io.gfile.makedirs(data_dir)
    with tf.io.gfile.GFile(probe, "w") as f:
      f.write("ok")
    tf.io.gfile.remove(probe)
  except (tf.errors.OpError, OSError) as e:
    raise ConfigError("--data_dir=%s is not writable (%s); pick a directory you can write to."
                      % (data_dir, getattr(e, "message", None) or e)) from None


def remove_problem_files(problem, data_dir):
  """Deletes a problem's shards, temporary files and vocabularies in data_dir (--overwrite)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from t2t_lite.data import generator_utils  # pylint: disable=g-import-not-at-top
  name = problem.dataset_filename()
  removed = 0
  if not tf.io.gfile.isdir(data_dir):
    return 0
  for entry in tf.io.gfile.listdir(data_dir):
    entry = entry.rstrip("/")
    m = generator_utils.SHARD_RE.match(entry)
    if ((m and m.group("problem") == name) or entry.startswith("vocab.%s." % name) or
        (entry.startswith("." + name) and ".incomplete-" in entry)):
      tf.io.gfile.remove(os.path.join(data_dir, entry))
      removed += 1
  return removed


def generate(problem, data_dir, tmp_dir, overwrite=False, random_seed=None, out=None):
  """Generates one problem's data; returns (examples written, seconds)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from t2t_lite.data import generator_utils  # pylint: disable=g-import-not-at-top
  out = out or sys.stdout

  def say(text):
    out.write(text + "\n")
    out.flush()

  if overwrite:
    n = remove_problem_files(problem, data_dir)
    if n:
      say("%s: --overwrite: removed %d old files" % (problem.name, n))
  if random_seed is not None:
    problem.random_seed = int(random_seed)
  progress = generator_utils.Progress(problem.name, every_s=5.0, printer=say)
  problem.datagen_progress = progress
  tf.io.gfile.makedirs(tmp_dir)
  say("%s: generating into %s ..." % (problem.name, data_dir))
  start = time.time()
  problem.generate_data(data_dir, tmp_dir)
  seconds = time.time() - start
  if progress.count:
    say("%s: %d examples written in %.1f s (%.0f examples/s)"
        % (problem.name, progress.count, seconds, progress.count / max(seconds, 1e-9)))
  else:
    say("%s: nothing new to write (complete shards are kept; --overwrite regenerates them)"
        % problem.name)
  name = problem.dataset_filename()
  files = sorted(f for f in tf.io.gfile.listdir(data_dir)
                 if (generator_utils.SHARD_RE.match(f) and
                     generator_utils.SHARD_RE.match(f).group("problem") == name)
                 or f.startswith("vocab.%s." % name))
  if files:
    say("%s: %d files in %s: %s" % (problem.name, len(files), data_dir,
                                    ", ".join(_summarize(files))))
  return progress.count, seconds


def _summarize(files):
  """Collapses shard lists: `p-train-{00000..00009}-of-00010`."""
  groups = {}
  order = []
  for f in files:
    head, sep, tail = f.rpartition("-of-")
    key = (head[:-6], tail) if sep and head[-6:-5] == "-" else (f, None)
    if key not in groups:
      groups[key] = []
      order.append(key)
    groups[key].append(f)
  out = []
  for key in order:
    items = groups[key]
    if key[1] is None or len(items) == 1:
      out.extend(items)
    else:
      out.append("%s-{%s..%s}-of-%s" % (key[0], items[0][len(key[0]) + 1:len(key[0]) + 6],
                                         items[-1][len(key[0]) + 1:len(key[0]) + 6], key[1]))
  return out


def main(argv):
  """Generates the data of every --problem (a name or a comma-separated list)."""
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top

  import t2t_lite.flags  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  from t2t_lite.errors import ConfigError  # pylint: disable=g-import-not-at-top

  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  _import_registrations(FLAGS.t2t_usr_dir)
  if getattr(FLAGS, "registry_help", False):
    print(registry.help_string())
    return 0
  if not FLAGS.problem:
    raise ConfigError("--problem is required: a registered problem name or a comma-separated "
                      "list (--registry_help lists them).")
  if not FLAGS.data_dir:
    raise ConfigError("--data_dir is required: where the problem's data goes.")
  names = [n.strip() for n in FLAGS.problem.split(",") if n.strip()]
  problems = [registry.problem(n) for n in names]  # unknown names fail before any work
  data_dir = os.path.expanduser(FLAGS.data_dir)
  tmp_dir = os.path.expanduser(FLAGS.tmp_dir)
  _check_writable(data_dir)
  seed = FLAGS.random_seed if FLAGS["random_seed"].present else None
  total, seconds = 0, 0.0
  for problem in problems:
    n, s = generate(problem, data_dir, tmp_dir, overwrite=FLAGS.overwrite, random_seed=seed)
    total += n
    seconds += s
  if len(problems) > 1 and total:
    print("t2t-datagen: %d examples in %.1f s (%.0f examples/s) into %s"
          % (total, seconds, total / max(seconds, 1e-9), data_dir))
  return 0


def _import_registrations(usr_dirs):
  """The built-in problems (and models, when present), then every --t2t_usr_dir."""
  import importlib  # pylint: disable=g-import-not-at-top
  importlib.import_module("problems")
  try:
    importlib.import_module("t2t_lite.models")
  except ImportError:
    pass
  from t2t_lite import usr_dir  # pylint: disable=g-import-not-at-top
  usr_dir.import_usr_dirs(usr_dirs)


def console_main():
  common.run_main(main, "t2t-datagen", __doc__)


if __name__ == "__main__":
  console_main()
