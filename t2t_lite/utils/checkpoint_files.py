"""The checkpoints of an output_dir: listing them, reading one whole, moving a bad one aside,
and restoring the newest one that reads.

    paths = checkpoint_files.checkpoint_paths(output_dir)           # newest first
    path = checkpoint_files.restore_newest_good(output_dir, restore)  # skips unreadable ones

A checkpoint that does not read (a checksum error, a truncated or missing file) is the
checkpoint's fault: the trainer moves it aside (`NAME.bad-TIMESTAMP.*`, never deleted), an
evaluator or the decoder skips it. `t2t_lite.output_dir` re-exports these functions.
"""
import os

from absl import logging

from t2t_lite.errors import CheckpointNotFoundError, CheckpointUnreadableError
from t2t_lite.utils import atomic_write


def latest_checkpoint(output_dir):
  """The newest checkpoint's path in output_dir.

  Raises:
    CheckpointNotFoundError: there is none.
  """
  paths = checkpoint_paths(output_dir)
  if not paths:
    raise CheckpointNotFoundError(
        "no checkpoint in --output_dir=%s: train a model there first (t2t-trainer ... "
        "--output_dir=%s)." % (output_dir, output_dir))
  return paths[0]


def checkpoint_paths(output_dir):
  """The checkpoints the output_dir's state file lists whose index exists, newest first."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  state = tf.train.get_checkpoint_state(output_dir) if output_dir else None
  if state is None:
    return []
  paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
  if state.model_checkpoint_path and state.model_checkpoint_path not in paths:
    paths.append(state.model_checkpoint_path)
  paths = [p if os.path.isabs(p) or "://" in p else os.path.join(output_dir, p) for p in paths]
  return [p for p in reversed(paths) if tf.io.gfile.exists(p + ".index")]


def checkpoint_files(path):
  """The files of checkpoint `path` (its .index and .data-* shards)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return sorted(tf.io.gfile.glob(path + ".index") + tf.io.gfile.glob(path + ".data-*"))


def move_checkpoint_aside(path, why):
  """Renames every file of checkpoint `path` to `NAME.bad-TIMESTAMP.*` (never deletes one),
  drops it from the output_dir's checkpoint state file, and logs a warning naming it.

  Returns:
    The new name's prefix.
  """
  import time  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gfile = tf.io.gfile
  aside = "%s.bad-%s" % (path, time.strftime("%Y%m%d-%H%M%S"))
  for name in checkpoint_files(path):
    gfile.rename(name, aside + name[len(path):], overwrite=False)
  output_dir = os.path.dirname(path)
  remaining = [p for p in checkpoint_paths(output_dir) if p != path]
  state_file = os.path.join(output_dir, "checkpoint")
  if remaining:
    # The state file CheckpointManager reads (a CheckpointState text proto), oldest first.
    names = [os.path.basename(p) for p in reversed(remaining)]
    text = 'model_checkpoint_path: "%s"\n' % names[-1] + "".join(
        'all_model_checkpoint_paths: "%s"\n' % name for name in names)
    atomic_write.write_text_atomically(state_file, text, "the checkpoint list")
  elif gfile.exists(state_file):
    gfile.rename(state_file, aside + ".checkpoint-state", overwrite=True)
  logging.warning("Checkpoint %s does not restore (%s); moved it aside to %s.*", path, why,
                  aside)
  print("warning: checkpoint %s does not restore (%s); moved it aside to %s.*" %
        (path, why, aside), flush=True)
  return aside


def restore_newest_good(output_dir, restore, move_aside=True, paths=None):
  """Calls `restore(path)` on the newest checkpoint that restores, going back past bad ones.

  A checkpoint that fails to read (a checksum error, a truncated index or data file, a
  missing data shard: `unreadable_checkpoint_errors`) is never reported as anything else:
  with `move_aside` (the trainer, which owns the output_dir) it is renamed aside
  (`move_checkpoint_aside`); otherwise (an evaluator or the decoder beside a trainer) it is
  skipped with a warning.

  Args:
    output_dir: the run's directory.
    restore: a function of a checkpoint path that raises when the checkpoint does not read.
    move_aside: rename bad checkpoints aside rather than only skipping them.
    paths: the candidates, newest first (default: `checkpoint_paths(output_dir)`).

  Returns:
    The path restored, or None when output_dir has no checkpoint.

  Raises:
    CheckpointUnreadableError: there are checkpoints and none of them restores.
  """
  paths = checkpoint_paths(output_dir) if paths is None else list(paths)
  failures = []
  for path in paths:
    try:
      verify_checkpoint(path)
      restore(path)
      return path
    except unreadable_checkpoint_errors() as e:
      why = atomic_write.first_line(e)
      failures.append("%s (%s)" % (os.path.basename(path), why))
      if move_aside:
        move_checkpoint_aside(path, why)
      else:
        logging.warning("Skipping checkpoint %s: it does not restore (%s).", path, why)
        print("warning: skipping checkpoint %s: it does not restore (%s)" % (path, why),
              flush=True)
  if not failures:
    return None
  raise CheckpointUnreadableError(
      "no checkpoint in %s restores: %s. %s" % (
          output_dir, "; ".join(failures),
          "They were moved aside (NAME.bad-*); run again to train from step 0, or put back "
          "good copies from a backup." if move_aside else
          "Restore good copies from a backup, or train again."))


def verify_checkpoint(path):
  """Reads every tensor of checkpoint `path` (each checked against its stored checksum) without
  touching any live object; raises one of `unreadable_checkpoint_errors` if one does not read.

  Restoring a damaged checkpoint straight into a model can fail half-way and leave the
  model's objects waiting for values from it, so a later restore of a good checkpoint would
  fail too; reading it first keeps a bad checkpoint from touching anything.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  dtypes = tf.train.load_checkpoint(path).get_variable_to_dtype_map()
  names = sorted(dtypes)
  tf.raw_ops.RestoreV2(prefix=path, tensor_names=names, shape_and_slices=[""] * len(names),
                       dtypes=[dtypes[n] for n in names])


def unreadable_checkpoint_errors():
  """What reading a damaged checkpoint raises: a checksum or file error from TensorFlow, or
  IndexError for a truncated data file. (A checkpoint of another model raises ValueError or
  AssertionError instead: that is a configuration error, never a reason to move it aside.)"""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return (tf.errors.OpError, IndexError)
