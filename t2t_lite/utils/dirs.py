"""Directory layout through tf.io.gfile, so `gs://` paths work."""
import os


def _join(base_dir, subdir):
  parts = (subdir,) if isinstance(subdir, str) else tuple(subdir)
  if not parts or not all(isinstance(p, str) and p for p in parts):
    raise ValueError("setup_directories: a subdir is a non-empty string or a tuple of them; "
                     "got %r" % (subdir,))
  return os.path.join(base_dir, *parts)


def setup_directories(base_dir, subdirs):
  """Creates `base_dir` and each subdir under it; returns {subdir: path}.

  Args:
    base_dir: the folder to lay out (local or any tf.io.gfile filesystem; a leading `~` is
      the home folder).
    subdirs: iterable of names; a name is a string ("data") or a tuple of path parts
      (("world_model", "debug_videos") -> base_dir/world_model/debug_videos). The key in the
      returned dict is the subdir exactly as given.

  Example:
    dirs = setup_directories("/tmp/run", ["data", ("world_model", "debug_videos")])
    dirs["data"]  # "/tmp/run/data"
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  base_dir = os.path.expanduser(base_dir)  # "~/run" is the home folder's, not "./~"
  tf.io.gfile.makedirs(base_dir)
  paths = {}
  for subdir in subdirs:
    path = _join(base_dir, subdir)
    tf.io.gfile.makedirs(path)
    paths[subdir] = path
  return paths
