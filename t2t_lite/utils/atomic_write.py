"""Files written whole or not at all: a temporary name beside the real one, then a rename.

    from t2t_lite.utils import atomic_write
    atomic_write.write_json_atomically(path, {"accuracy": 0.99}, "the evaluation results")

A reader (or a run killed mid-write) never sees half a file; a write that fails leaves no
temporary file and raises OutputWriteError saying what, where, why and the free space there.
All access goes through tf.io.gfile, so `gs://` paths work; TensorFlow is imported only when a
file is touched. `t2t_lite.output_dir` uses these for every file of an output_dir.
"""
import json
import os

from t2t_lite.errors import OutputWriteError


def _gfile():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile


def first_line(error):
  """An error's message as one line of at most 300 characters (for a one-line report)."""
  text = getattr(error, "message", None) or str(error) or type(error).__name__
  return " ".join(text.strip().splitlines()[0].split())[:300]


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
  why = first_line(error)
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
