"""Everything t2t_lite keeps in an output_dir, in one place: the files' names (from
`t2t_lite.constants`), how they are written (atomically), read and checked.

    output_dir.save_or_check_hparams(out, hparams, flags_text)   # hparams.json, flags.txt
    hparams = output_dir.load_hparams(out, "transformer_tiny")   # for decoding a run
    output_dir.write_eval_results(out, {"accuracy": 0.99, "global_step": 2000})
    lock = output_dir.acquire_lock(out)                          # one trainer per output_dir
    ...
    lock.release()

Every file is written under a temporary name and renamed over the real one, so a reader (or a
run killed mid-write) never sees half of one (`t2t_lite.utils.atomic_write`). All access goes
through tf.io.gfile, so `gs://` paths work; TensorFlow is imported only when a file is touched.
The checkpoints (listing, checking, moving aside, restoring the newest good one) are
`t2t_lite.utils.checkpoint_files`; both are re-exported here, where their callers reach them.
"""
import json
import os

from absl import logging

from t2t_lite import constants
from t2t_lite import registry
from t2t_lite.errors import ConfigError, HParamsError, OutputWriteError  # noqa: F401
from t2t_lite.hparams import HParams
# Callers reach the atomic writes and the checkpoint files through this module.
from t2t_lite.utils.atomic_write import (free_space, write_errors, write_failed,  # noqa: F401
                                         write_json_atomically, write_lines_atomically,
                                         write_text_atomically)
from t2t_lite.utils.checkpoint_files import (checkpoint_files, checkpoint_paths,  # noqa: F401
                                             latest_checkpoint, move_checkpoint_aside,
                                             restore_newest_good, unreadable_checkpoint_errors,
                                             verify_checkpoint)


def _gfile():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile


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
