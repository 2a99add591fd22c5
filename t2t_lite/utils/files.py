"""Files that must never be seen half-written, through tf.io.gfile (so `gs://` works)."""
import json
import os


def write_text_atomically(path, text):
  """Writes `text` to a temporary name beside `path`, then renames it over `path`.

  A reader sees the old file or the new one, never part of one; a write that fails leaves no
  temporary file behind.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tmp = "%s.tmp-%d-%s" % (path, os.getpid(), os.urandom(4).hex())
  try:
    with tf.io.gfile.GFile(tmp, "w") as f:
      f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)
  finally:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)


def write_json_atomically(path, obj):
  """`obj` as indented, key-sorted JSON, written with `write_text_atomically`."""
  write_text_atomically(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
