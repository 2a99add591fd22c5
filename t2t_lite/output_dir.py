"""Everything t2t_lite keeps in an output_dir, in one place: the files' names (from
`t2t_lite.constants`), how they are written (atomically), read and checked.

    output_dir.save_or_check_hparams(out, hparams, flags_text)   # hparams.json, flags.txt
    hparams = output_dir.load_hparams(out, "transformer_tiny")   # for decoding a run
    output_dir.write_eval_results(out, {"accuracy": 0.99, "global_step": 2000})
    lock = output_dir.acquire_lock(out)                          # one trainer per output_dir
    ...
    lock.release()

Every file is written under a temporary name and renamed over the real one, so a reader (or a
run killed mid-write) never sees half of one. All access goes through tf.io.gfile, so `gs://`
paths work; TensorFlow is imported only when a file is touched.
"""
import json
import os

from absl import logging

from t2t_lite import constants
from t2t_lite import registry
from t2t_lite.errors import (CheckpointNotFoundError, CheckpointUnreadableError, ConfigError,
                             HParamsError, OutputWriteError)
from t2t_lite.hparams import HParams


def _gfile():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile


# -- atomic writes -----------------------------------------------------------------------------


def free_space(path):
  """The free space of the file system holding `path` (or its nearest existing parent), as
  text: "1.2 GB free", or "free space unknown" for a remote path."""
  import shutil  # pylint: disable=g-import-not-at-top
  if "://" in path and not path.startswith("file://"):
    return "free space unknown"
  path = os.path.abspath(path.replace("file://", "", 1))
  while path and not os.path.exists(path):
    path = os.path.dirname(path)
  try:
    free = shutil.disk_usage(path or "/").free
  except OSError:
    return "free space unknown"
  for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
    if free >= size:
      return "%.1f %s free" % (free / size, unit)
  return "%d bytes free" % free


def write_failed(what, path, error, kept=None):
  """The OutputWriteError for a failed write: what, where, why, the free space seen there and
  what complete files are kept (`kept`, a phrase)."""
  why = _first_line(error)
  return OutputWriteError(
      "could not write %s %s (%s; %s there)%s. Free some space or point the run at a "
      "writable directory, then run the same command again." % (
          what, path, why, free_space(os.path.dirname(path) or "."),
          "; %s" % kept if kept else ""))


def write_errors():
  """What a failed write raises: an OSError (Python) or a TensorFlow file error."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return (OSError, tf.errors.OpError)


def write_text_atomically(path, text, what="file"):
  """Writes `text` to a temporary name beside `path`, then renames it over `path`.

  A reader sees the old file or the new one, never part of one; a write that fails leaves no
  temporary file behind and raises OutputWriteError (the old file, if any, is kept).
  """
  gfile = _gfile()
  tmp = "%s.tmp-%d-%s" % (path, os.getpid(), os.urandom(4).hex())
  try:
    with gfile.GFile(tmp, "w") as f:
      f.write(text)
    gfile.rename(tmp, path, overwrite=True)
  except write_errors() as e:
    kept = "the previous %s is kept" % os.path.basename(path) if gfile.exists(path) else None
    raise write_failed(what, path, e, kept) from None
  finally:
    try:
      if gfile.exists(tmp):
        gfile.remove(tmp)
    except write_errors():
      pass


def write_json_atomically(path, obj, what="file"):
  """`obj` as indented, key-sorted JSON, written with `write_text_atomically`."""
  write_text_atomically(path, json.dumps(obj, indent=2, sort_keys=True) + "\n", what)


def write_lines_atomically(path, lines):
  """Each of `lines` and a newline, written with `write_text_atomically` (parent created)."""
  parent = os.path.dirname(path)
  if parent:
    _gfile().makedirs(parent)
  write_text_atomically(path, "".join(line + "\n" for line in lines), "the decodes")


# -- hparams.json and flags.txt ------------------------------------------------------------------


def hparams_path(output_dir, filename=constants.HPARAMS_FILENAME):
  return os.path.join(output_dir, filename)


def hparams_differences(saved, new):
  """`name: saved X, new Y` for every name whose values differ (or exist on one side)."""
  saved_values, new_values = saved.values(), new.values()
  diffs = []
  for name in sorted(set(saved_values) | set(new_values)):
    if name not in new_values:
      diffs.append("%s: saved %r, new (absent)" % (name, saved_values[name]))
    elif name not in saved_values:
      diffs.append("%s: saved (absent), new %r" % (name, new_values[name]))
    elif HParams(x=saved_values[name]) != HParams(x=new_values[name]):
      diffs.append("%s: saved %r, new %r" % (name, saved_values[name], new_values[name]))
  return diffs


def read_saved_hparams(output_dir, filename=constants.HPARAMS_FILENAME):
  """The HParams saved in OUTPUT_DIR/hparams.json (or `filename`), or None when there is none.

  Raises:
    ConfigError: the file is not a valid hparams file.
  """
  gfile = _gfile()
  path = hparams_path(output_dir, filename)
  if not output_dir or not gfile.exists(path):
    return None
  with gfile.GFile(path, "r") as f:
    text = f.read()
  try:
    return HParams.from_json(text)
  except (HParamsError, ValueError) as e:
    raise ConfigError("%s is not a valid hparams file (%s). Pass --overwrite_output_hparams "
                      "to replace it with this run's hparams." % (path, e)) from None


def check_hparams(output_dir, hparams, filename=constants.HPARAMS_FILENAME):
  """Raises ConfigError when OUTPUT_DIR/hparams.json (or `filename`) holds hparams other than
  `hparams`."""
  saved = read_saved_hparams(output_dir, filename)
  if saved is None:
    return
  diffs = hparams_differences(saved, HParams.from_json(hparams.to_json()))
  if diffs:
    raise ConfigError(
        "The hparams differ from the ones saved in %s: %s. Pass --overwrite_output_hparams to "
        "take the new values (the checkpoints there were trained with the saved ones), or use "
        "another --output_dir." % (hparams_path(output_dir, filename), "; ".join(diffs)))


def save_or_check_hparams(output_dir, hparams, flags_text=None, overwrite=False,
                          filename=constants.HPARAMS_FILENAME):
  """Saves `hparams` in output_dir, or checks them against the ones saved there.

  The first run writes OUTPUT_DIR/hparams.json. A later run loads it: a difference from
  `hparams` is an error naming each one, unless `overwrite` (--overwrite_output_hparams),
  which saves the new values. `flags_text` (the command's flags as an absl flag file), when
  given, is written to OUTPUT_DIR/flags.txt on every run that passes the check. `filename`
  names another hparams file (the model-based loop's loop_hparams.json).

  Returns:
    `hparams`.

  Raises:
    ConfigError: the saved hparams differ (and not `overwrite`), or hparams.json is invalid.
  """
  gfile = _gfile()
  path = hparams_path(output_dir, filename)
  if overwrite or not gfile.exists(path):
    gfile.makedirs(output_dir)
    write_text_atomically(path, hparams.to_json(indent=2, sort_keys=True) + "\n", "the hparams")
  else:
    check_hparams(output_dir, hparams, filename)
  if flags_text is not None:
    write_text_atomically(os.path.join(output_dir, constants.FLAGS_FILENAME), flags_text,
                          "the flags")
  return hparams


# -- vocab.json: the vocabulary the checkpoints were trained with --------------------------------


def vocab_fingerprint(vocab_files, vocab_sizes):
  """What identifies a vocabulary: each file's name and sha256, and the id counts.

  Args:
    vocab_files: the vocabulary files the problem's encoders read (may be empty: a byte or
      generated vocabulary has no file).
    vocab_sizes: {feature: number of ids}.
  """
  import hashlib  # pylint: disable=g-import-not-at-top
  gfile = _gfile()
  files = {}
  for path in vocab_files:
    digest = hashlib.sha256()
    with gfile.GFile(path, "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):  # pylint: disable=cell-var-from-loop
        digest.update(block)
    files[os.path.basename(path)] = digest.hexdigest()
  return {"files": files,
          "vocab_size": {k: int(v) for k, v in sorted(vocab_sizes.items()) if v is not None}}


def read_vocab_fingerprint(output_dir):
  """The fingerprint saved in OUTPUT_DIR/vocab.json, or None (runs from before it existed)."""
  gfile = _gfile()
  path = os.path.join(output_dir, constants.VOCAB_FILENAME)
  if not output_dir or not gfile.exists(path):
    return None
  with gfile.GFile(path, "r") as f:
    text = f.read()
  try:
    saved = json.loads(text)
    return {"files": dict(saved["files"]), "vocab_size": dict(saved["vocab_size"])}
  except (ValueError, KeyError, TypeError) as e:
    raise ConfigError("%s is not a valid vocabulary fingerprint (%s). Delete it to skip the "
                      "check." % (path, e)) from None


def check_vocab(output_dir, fingerprint, data_dir=None):
  """Raises ConfigError when the vocabulary `fingerprint` (of data_dir) is not the one the
  checkpoints in output_dir were trained with: ids would mean other words, so decodes would
  be nonsense and training would go on from weights for other tokens."""
  saved = read_vocab_fingerprint(output_dir)
  if saved is None or saved == fingerprint:
    return
  where = "data_dir %s" % data_dir if data_dir else "this data_dir"
  if saved["vocab_size"] != fingerprint["vocab_size"]:
    what = "it has %s ids where the run's had %s" % (
        _sizes(fingerprint["vocab_size"]), _sizes(saved["vocab_size"]))
  else:
    names = sorted(set(saved["files"]) | set(fingerprint["files"]))
    changed = [n for n in names if saved["files"].get(n) != fingerprint["files"].get(n)]
    what = "%s differs (sha256 %s, the run's %s)" % (
        changed[0], (fingerprint["files"].get(changed[0]) or "absent")[:12],
        (saved["files"].get(changed[0]) or "absent")[:12])
  raise ConfigError(
      "the vocabulary in %s does not match the one the checkpoints in %s were trained with: "
      "%s (recorded in %s). Use the data_dir the run was trained with." % (
          where, output_dir, what, os.path.join(output_dir, constants.VOCAB_FILENAME)))


def _sizes(vocab_sizes):
  return ", ".join("%s %d" % (k, v) for k, v in sorted(vocab_sizes.items()))


def save_or_check_vocab(output_dir, fingerprint, data_dir=None):
  """Saves the vocabulary fingerprint in OUTPUT_DIR/vocab.json on a run's first start, checks
  it on every later one (`check_vocab`)."""
  gfile = _gfile()
  if read_vocab_fingerprint(output_dir) is None:
    gfile.makedirs(output_dir)
    write_json_atomically(os.path.join(output_dir, constants.VOCAB_FILENAME), fingerprint,
                          "the vocabulary fingerprint")
  else:
    check_vocab(output_dir, fingerprint, data_dir)


def copy_vocab_fingerprint(from_dir, to_dir):
  """Copies vocab.json from a run into a directory of models made from it (best, averages)."""
  saved = read_vocab_fingerprint(from_dir)
  if saved is not None:
    write_json_atomically(os.path.join(to_dir, constants.VOCAB_FILENAME), saved,
                          "the vocabulary fingerprint")


def load_hparams(output_dir, hparams_set=None, overrides=""):
  """The model hparams of a trained run, with `overrides` (an `--hparams` string) applied.

  They come from OUTPUT_DIR/hparams.json (what the trainer saved, so they match the
  checkpoints) when it exists, else from the registered `hparams_set`.

  Raises:
    ConfigError: neither hparams.json nor hparams_set, or an unreadable hparams.json.
    UnknownNameError / HParamsError: an unknown set or a bad overrides string.
  """
  hparams = read_saved_hparams(output_dir)
  if hparams is not None:
    saved_set = hparams.get("hparams_set")
    if hparams_set and saved_set and saved_set != hparams_set:
      logging.warning("--hparams_set=%s, but %s was trained with %s: using the saved "
                      "hparams, which match its checkpoints.", hparams_set, output_dir,
                      saved_set)
  elif hparams_set:
    hparams = registry.hparams(hparams_set)
  else:
    raise ConfigError("--hparams_set is required: %s has no %s to read the hparams from." %
                      (output_dir, constants.HPARAMS_FILENAME))
  hparams.parse(overrides or "")
  return hparams


# -- eval_results.json ---------------------------------------------------------------------------


def write_eval_results(output_dir, results):
  """Writes the latest evaluation to OUTPUT_DIR/eval_results.json."""
  write_json_atomically(os.path.join(output_dir, constants.EVAL_RESULTS_FILENAME), results,
                        "the evaluation results")


def read_eval_results(output_dir):
  """The latest evaluation saved in output_dir ({} when there is none)."""
  gfile = _gfile()
  path = os.path.join(output_dir, constants.EVAL_RESULTS_FILENAME)
  if not gfile.exists(path):
    return {}
  with gfile.GFile(path, "r") as f:
    return json.loads(f.read())


# -- checkpoints -----------------------------------------------------------------------------------


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
  gfile = _gfile()
  return sorted(gfile.glob(path + ".index") + gfile.glob(path + ".data-*"))


def move_checkpoint_aside(path, why):
  """Renames every file of checkpoint `path` to `NAME.bad-TIMESTAMP.*` (never deletes one),
  drops it from the output_dir's checkpoint state file, and logs a warning naming it.

  Returns:
    The new name's prefix.
  """
  import time  # pylint: disable=g-import-not-at-top
  gfile = _gfile()
  aside = "%s.bad-%s" % (path, time.strftime("%Y%m%d-%H%M%S"))
  for name in checkpoint_files(path):
    gfile.rename(name, aside + name[len(path):], overwrite=False)
  output_dir = os.path.dirname(path)
  remaining = [p for p in checkpoint_paths(output_dir) if p != path]
  state_file = os.path.join(output_dir, "checkpoint")
  if remaining:
    # The state file CheckpointManager reads (a CheckpointState text proto), oldest first.
    names = [os.path.basename(p) for p in reversed(remaining)]
    write_text_atomically(state_file, 'model_checkpoint_path: "%s"\n' % names[-1] + "".join(
        'all_model_checkpoint_paths: "%s"\n' % name for name in names), "the checkpoint list")
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
      why = _first_line(e)
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


def _first_line(error):
  text = getattr(error, "message", None) or str(error) or type(error).__name__
  return " ".join(text.strip().splitlines()[0].split())[:300]


# -- the lock ------------------------------------------------------------------------------------


def acquire_lock(output_dir):
  """Takes output_dir's lock (OUTPUT_DIR/.t2t_lock, creating the directory); returns it.

  Raises:
    OutputDirLockedError: another live run holds it.
    ConfigError: output_dir cannot be written.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from t2t_lite.utils import lock as lock_lib  # pylint: disable=g-import-not-at-top
  lock = lock_lib.OutputDirLock(output_dir)
  try:
    lock.acquire()
  except (OSError, tf.errors.OpError) as e:
    raise ConfigError("--output_dir=%s is not writable (%s); pick a directory you can write "
                      "to." % (output_dir, getattr(e, "message", None) or e)) from None
  if lock.took_over:
    logging.warning("Took over the stale lock of %s (%s).", output_dir, lock.took_over)
    print("Took over the stale lock in %s (%s)." % (output_dir, lock.took_over), flush=True)
  return lock
