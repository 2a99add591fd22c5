"""A lock file that keeps two trainers out of one output_dir.

    with OutputDirLock(output_dir):
      ...  # train; a second `t2t-trainer` on output_dir fails with OutputDirLockedError

The lock is the file `OUTPUT_DIR/.t2t_lock`, holding a JSON line that names its owner: the
pid, the hostname, the boot id and the process start time (Linux), the time it was taken and
the command. It is taken with an exclusive create (`os.open` with `O_CREAT | O_EXCL`), which
succeeds for exactly one process on a local file system, and removed when the owner releases
it.

A process killed with SIGKILL (or a machine that went down) cannot remove its lock. A lock
whose owner is on this host and provably gone is *stale* and is taken over:

- its pid is not alive here, or
- it was taken before this host's last boot (another boot id), or
- its pid is alive but belongs to another process (another start time: the pid was reused,
  as happens in a restarted container where pids count from 1 again).

A lock held from another host is never taken over (its owner cannot be checked from here):
the error names the host and pid, and says to delete the file if that run is over.

On paths that are not local (`gs://...` and other tf.io.gfile file systems) there is no
exclusive create: the lock is best-effort, a check for an existing lock followed by a write,
so two trainers started in the same second may both get it. It still stops the common
mistake of starting a second run on a busy output_dir.
"""
import json
import os
import socket
import time
import uuid

from t2t_lite.errors import ConfigError

from t2t_lite.constants import LOCK_FILENAME  # noqa: E402
# A lock file that cannot be read (its owner died between creating and writing it, a few
# microseconds) is stale once it is this old.
UNREADABLE_STALE_SECONDS = 30.0

_HELD_TOKENS = set()  # the tokens of the locks this process holds

__all__ = ["LOCK_FILENAME", "OutputDirLock", "OutputDirLockedError", "lock_path",
           "read_lock"]


class OutputDirLockedError(ConfigError):
  """Another live process holds the output_dir's lock."""


def lock_path(output_dir):
  """The lock file of `output_dir`."""
  return os.path.join(output_dir, LOCK_FILENAME)


def _is_local(path):
  return "://" not in path or path.startswith("file://")


def _local(path):
  return path[len("file://"):] if path.startswith("file://") else path


def _boot_id():
  try:
    with open("/proc/sys/kernel/random/boot_id") as f:
      return f.read().strip()
  except OSError:
    return None


def _start_time(pid):
  """The start time of process `pid` in clock ticks since boot (Linux), else None."""
  try:
    with open("/proc/%d/stat" % pid) as f:
      stat = f.read()
  except OSError:
    return None
  # The command name (field 2) is in parentheses and may hold spaces: split after it.
  fields = stat[stat.rfind(")") + 2:].split()
  try:
    return int(fields[19])  # field 22 of the whole line
  except (IndexError, ValueError):
    return None


def _pid_alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # it exists, owned by someone else
  except OSError:
    return True
  return True


def _owner_record():
  import sys  # pylint: disable=g-import-not-at-top
  pid = os.getpid()
  return {
      "pid": pid,
      "hostname": socket.gethostname(),
      "boot_id": _boot_id(),
      "start_time": _start_time(pid),
      "created": time.time(),
      "token": uuid.uuid4().hex,
      "command": " ".join(sys.argv)[:500],
  }


def read_lock(path):
  """The owner record of the lock file at `path`; None if there is none; {} if unreadable."""
  if _is_local(path):
    try:
      with open(_local(path), "r") as f:
        text = f.read()
    except FileNotFoundError:
      return None
    except OSError:
      return {}
  else:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    try:
      with tf.io.gfile.GFile(path, "r") as f:
        text = f.read()
    except tf.errors.NotFoundError:
      return None
    except tf.errors.OpError:
      return {}
  try:
    record = json.loads(text)
  except ValueError:
    return {}
  return record if isinstance(record, dict) else {}


def stale_reason(record, path=None):
  """Why the lock with owner `record` is stale, or None when its owner may be alive."""
  if not record:
    age = None
    if path is not None and _is_local(path):
      try:
        age = time.time() - os.stat(_local(path)).st_mtime
      except OSError:
        return "the lock file is gone"
    if age is not None and age > UNREADABLE_STALE_SECONDS:
      return "the lock file is unreadable and %.0f s old" % age
    return None
  if record.get("hostname") != socket.gethostname():
    return None
  pid = record.get("pid")
  if not isinstance(pid, int) or pid <= 0:
    return "the lock names no valid pid"
  boot_id = _boot_id()
  if boot_id and record.get("boot_id") and record["boot_id"] != boot_id:
    return "process %d ran before this host's last boot" % pid
  if pid == os.getpid():
    if record.get("token") in _HELD_TOKENS:
      return None  # held by another OutputDirLock of this process
    # Not taken by this process, so by an earlier process that had the same pid (a restarted
    # container).
    return "process %d is this process, which does not hold the lock" % pid
  if not _pid_alive(pid):
    return "process %d is not running" % pid
  start = record.get("start_time")
  if start is not None:
    now = _start_time(pid)
    if now is not None and now != start:
      return "pid %d now belongs to another process" % pid
  return None


def _describe(record):
  if not record:
    return "an unknown process (the lock file is unreadable)"
  when = record.get("created")
  since = (" since %s" % time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
           if isinstance(when, (int, float)) else "")
  return "pid %s on host %s%s" % (record.get("pid"), record.get("hostname"), since)


class OutputDirLock:
  """An exclusive lock on an output_dir for one process (see the module docstring).

  Args:
    output_dir: the directory to lock (created if missing).

  Usable as a context manager, or with `acquire()` / `release()`. `acquire` raises
  `OutputDirLockedError` (a ConfigError: the scripts print it as one line and exit 2) when
  another live process holds the lock; a stale lock is taken over (`took_over` says from
  whom).

  Example:

      lock = OutputDirLock("/tmp/run")
      lock.acquire()
      try:
        ...
      finally:
        lock.release()
  """

  def __init__(self, output_dir):
    self.output_dir = output_dir
    self.path = lock_path(output_dir)
    self.record = None
    self.took_over = None

  @property
  def held(self):
    return self.record is not None

  def acquire(self):
    """Takes the lock; returns self. Raises OutputDirLockedError if it is held."""
    if self.held:
      return self
    if _is_local(self.path):
      self._acquire_local()
    else:
      self._acquire_gfile()
    return self

  def _refuse(self, record):
    raise OutputDirLockedError(
        "--output_dir=%s is in use by another trainer (%s; lock file %s). Wait for it to "
        "finish or stop it, or use another --output_dir; if that run is over (or on another "
        "machine and dead), delete the lock file." %
        (self.output_dir, _describe(record), self.path))

  def _acquire_local(self):
    directory = _local(self.output_dir)
    os.makedirs(directory, exist_ok=True)
    path = _local(self.path)
    for _ in range(5):
      record = _owner_record()
      try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        existing = read_lock(path)
        if existing is None:
          continue  # released in the meantime: try again
        reason = stale_reason(existing, path)
        if reason is None:
          self._refuse(existing)
        if self._remove_stale(path, existing):
          self.took_over = "%s: %s" % (_describe(existing), reason)
        continue
      try:
        os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))
        os.fsync(fd)
      finally:
        os.close(fd)
      self.record = record
      _HELD_TOKENS.add(record["token"])
      return
    self._refuse(read_lock(path))

  @staticmethod
  def _remove_stale(path, stale):
    """Moves the stale lock aside and deletes it; True if it was the one judged stale.

    Two processes may judge the same lock stale at once: moving it aside is atomic, so only
    one of them moves it; if the file moved is not the stale one (another process took the
    lock in between), it is put back.
    """
    aside = "%s.stale-%d-%s" % (path, os.getpid(), uuid.uuid4().hex[:8])
    try:
      os.rename(path, aside)
    except FileNotFoundError:
      return False
    moved = read_lock(aside)
    if moved == stale or (not stale and not moved):
      os.remove(aside)
      return True
    try:
      os.link(aside, path)  # put the live lock back (fails if a third process holds it)
    except OSError:
      pass
    os.remove(aside)
    return False

  def _acquire_gfile(self):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    existing = read_lock(self.path)
    if existing is not None:
      reason = stale_reason(existing)
      if reason is None:
        self._refuse(existing)
      self.took_over = "%s: %s" % (_describe(existing), reason)
    record = _owner_record()
    tf.io.gfile.makedirs(self.output_dir)
    with tf.io.gfile.GFile(self.path, "w") as f:
      f.write(json.dumps(record, sort_keys=True) + "\n")
    self.record = record
    _HELD_TOKENS.add(record["token"])

  def release(self):
    """Removes the lock file if this process still owns it. Safe to call twice."""
    if not self.held:
      return
    record, self.record = self.record, None
    _HELD_TOKENS.discard(record["token"])
    current = read_lock(self.path)
    if not current or current.get("token") != record["token"]:
      return  # taken over or removed by someone else: not ours to delete
    try:
      if _is_local(self.path):
        os.remove(_local(self.path))
      else:
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        tf.io.gfile.remove(self.path)
    except (OSError, ImportError):
      pass
    except Exception:  # pylint: disable=broad-except  (tf.errors.OpError)
      pass

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc_info):
    self.release()
    return False
