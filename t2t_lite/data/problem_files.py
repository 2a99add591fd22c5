"""Where a Problem's data is: the shards of a split in a data_dir, and the command that makes
them. `Problem.data_files`, `data_exists`, `data_filepattern` and `datagen_command` call these
(a Problem subclass overrides those methods, not these functions).
"""
from t2t_lite import errors
from t2t_lite.data import generator_utils


def data_filepattern(problem, data_dir, split):
  """The glob of a split's shards (shared by NAME, NAME_rev and NAME_copy)."""
  return generator_utils.shard_pattern(data_dir, problem.dataset_filename(), split)


def datagen_command(problem, data_dir):
  """The t2t-datagen command that writes the problem's data into data_dir."""
  return "t2t-datagen --problem=%s --data_dir=%s" % (problem.dataset_filename(), data_dir)


def data_files(problem, data_dir, split):
  """The complete shards of a split.

  Raises:
    DataNotFoundError: no data_dir, no shards there, or fewer than the count their names
      announce (the message says how to make them).
  """
  if not data_dir:
    raise errors.DataNotFoundError(
        "problem %s needs --data_dir (where its data is, or goes). Create the data with: "
        "t2t-datagen --problem=%s --data_dir=DIR" % (problem.name, problem.dataset_filename()))
  paths, count = generator_utils.find_shards(data_dir, problem.dataset_filename(), split)
  pattern = problem.data_filepattern(data_dir, split)
  if not paths:
    raise errors.DataNotFoundError(
        "no %s data for problem %s in data_dir %s (looked for %s). Create it with: %s"
        % (split, problem.name, data_dir, pattern, problem.datagen_command(data_dir)))
  if len(paths) != count:
    raise errors.DataNotFoundError(
        "incomplete %s data for problem %s in data_dir %s: %d of the %d shards matching %s "
        "are there (an interrupted generation?). Complete it with: %s"
        % (split, problem.name, data_dir, len(paths), count, pattern,
           problem.datagen_command(data_dir)))
  return paths


def data_exists(problem, data_dir, splits=None):
  """True when every split (default: all of the problem's dataset_splits) has all its
  shards in data_dir."""
  if not data_dir:
    return False
  splits = splits or [s["split"] for s in problem.dataset_splits()]
  for split in splits:
    paths, count = generator_utils.find_shards(data_dir, problem.dataset_filename(), split)
    if not paths or len(paths) != count:
      return False
  return True
