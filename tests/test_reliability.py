"""Killed and interrupted runs, two trainers on one output_dir, corrupt data, the lock file.

The scripts run as real subprocesses (`python scripts/t2t_trainer.py ...`), killed with real
signals at seeded random moments. The model is a tiny transformer on `tiny_algo`, so a run is
mostly Python and TensorFlow start-up; the README's table of bad inputs is tested in
test_reliability_cli.py.
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from t2t_lite.errors import ConfigError
from t2t_lite.utils import lock as lock_lib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
PROBLEM = "tiny_algo"
# Dropout off here, so these runs test resuming alone; resuming with dropout (its random state
# is in the checkpoint) is test_resume_with_dropout_matches_an_uninterrupted_run.
TINY = ("hidden_size=16,filter_size=32,num_heads=2,num_hidden_layers=1,batch_size=64,"
        "iterations_per_loop=1,layer_prepostprocess_dropout=0.0,attention_dropout=0.0,"
        "relu_dropout=0.0")
WAIT = 400  # seconds any one process may take on a loaded machine
STEP_RE = re.compile(r"step (\d+)/(\d+) loss")


def script_env():
  env = dict(os.environ)
  env["TF_CPP_MIN_LOG_LEVEL"] = "3"
  env["TF_DETERMINISTIC_OPS"] = "1"
  env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
  env.pop("T2T_TRACEBACK", None)
  return env


class Script:
  """A script running in a subprocess; its stderr lines are collected as they come."""

  def __init__(self, name, *args):
    self.proc = subprocess.Popen(
        [sys.executable, os.path.join("scripts", name)] + list(args), cwd=REPO_ROOT,
        env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    self.err_lines = []
    self.out_lines = []
    self._threads = [threading.Thread(target=self._pump, args=(s, l), daemon=True)
                     for s, l in ((self.proc.stderr, self.err_lines),
                                  (self.proc.stdout, self.out_lines))]
    for t in self._threads:
      t.start()

  @staticmethod
  def _pump(stream, lines):
    for line in stream:
      lines.append(line.rstrip("\n"))

  @property
  def pid(self):
    return self.proc.pid

  def steps(self):
    """The training steps logged so far."""
    return [int(m.group(1)) for m in map(STEP_RE.search, list(self.err_lines)) if m]

  def wait_until(self, condition, what, timeout=WAIT, poll=0.01):
    deadline = time.time() + timeout
    while not condition():
      if self.proc.poll() is not None:
        self.join()
        raise AssertionError("the script exited (%s) before %s:\n%s" % (
            self.proc.returncode, what, self.stderr[-4000:]))
      if time.time() > deadline:
        self.kill()
        raise AssertionError("no %s after %d s:\n%s" % (what, timeout, self.stderr[-4000:]))
      time.sleep(poll)

  def kill(self, sig=signal.SIGKILL):
    if self.proc.poll() is None:
      os.kill(self.proc.pid, sig)
    return self.join()

  def join(self, timeout=WAIT):
    try:
      self.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      self.proc.kill()
      self.proc.wait()
      raise
    for t in self._threads:
      t.join(timeout=30)
    return self.proc.returncode

  @property
  def stderr(self):
    return "\n".join(self.err_lines)

  @property
  def stdout(self):
    return "\n".join(self.out_lines)


def trainer(data_dir, output_dir, *extra, train_steps=40, save_every=5, hparams=TINY):
  return Script("t2t_trainer.py", "--problem=" + PROBLEM, "--model=transformer",
                "--hparams_set=transformer_tiny", "--hparams=" + hparams,
                "--data_dir=" + data_dir, "--output_dir=" + output_dir,
                "--train_steps=%d" % train_steps, "--save_checkpoints_steps=%d" % save_every,
                "--log_step_count_steps=1", "--schedule=train", "--random_seed=7", *extra)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("data"))
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  import problems  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  registry.problem(PROBLEM).generate_data(path, path)
  return path


def checkpoint_tensors(path):
  """{name: value} of the checkpoint's tensors at `path` (reading checks each checksum).

  The data iterator's state is a variant tensor, which a CheckpointReader cannot turn into
  numpy; the next run restores it (and resumes at the right step with the right data, which
  the tests check through the weights).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(path)
  return {name: np.asarray(reader.get_tensor(name))
          for name, dtype in reader.get_variable_to_dtype_map().items()
          if dtype != tf.variant}


def assert_newest_checkpoint_restores(output_dir):
  """The newest checkpoint loads completely; returns its step (0 when there is none)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = tf.train.latest_checkpoint(output_dir)
  indexes = [n for n in os.listdir(output_dir) if re.fullmatch(r"ckpt-\d+\.index", n)]
  if path is None:
    assert not indexes, "checkpoints %s but no latest_checkpoint" % indexes
    return 0
  tensors = checkpoint_tensors(path)
  step = int(tensors["step/.ATTRIBUTES/VARIABLE_VALUE"])
  assert path.endswith("ckpt-%d" % step)
  return step


def _tmp_entries(output_dir):
  """Names of what TensorFlow writes while a checkpoint is being saved."""
  try:
    names = os.listdir(output_dir)
  except FileNotFoundError:
    return []
  return [n for n in names
          if "_temp" in n or "tempstate" in n or n.startswith("checkpoint.tmp")]


def test_sigkill_three_times_then_the_run_ends_as_if_never_killed(data_dir, tmp_path):
  """SIGKILL at three seeded random moments (one inside a checkpoint save), restart each
  time: every newest checkpoint restores, the last run reaches train_steps, and the final
  weights, optimizer state, step and data position equal an uninterrupted run's."""
  rng = random.Random(20261124)
  train_steps = 40
  straight_dir, killed_dir = str(tmp_path / "straight"), str(tmp_path / "killed")
  straight = trainer(data_dir, straight_dir, train_steps=train_steps)  # runs alongside
  kills = []

  # 1: at a random step after the first checkpoint.
  first_kill = rng.randint(6, 14)
  run = trainer(data_dir, killed_dir, train_steps=train_steps)
  run.wait_until(lambda: any(s >= first_kill for s in run.steps()), "step %d" % first_kill)
  assert run.kill() == -signal.SIGKILL
  kills.append(("step", max(run.steps())))
  restored = assert_newest_checkpoint_restores(killed_dir)

  # 2: inside a checkpoint save (TensorFlow's temporary files exist), or, if the save was
  # too quick to be seen, right after the next checkpoint's index appears.
  run = trainer(data_dir, killed_dir, train_steps=train_steps)
  before = set(os.listdir(killed_dir))
  def saving():
    if _tmp_entries(killed_dir):
      return True
    new = set(os.listdir(killed_dir)) - before
    return any(n.endswith(".index") for n in new)
  run.wait_until(saving, "a checkpoint save", poll=0.0005)
  how = "during save" if _tmp_entries(killed_dir) else "after index"
  assert run.kill() == -signal.SIGKILL
  kills.append((how, max(run.steps() or [restored])))
  assert "Took over the stale lock" in run.stdout  # the first run's lock
  assert min(run.steps()) == restored + 1, "did not resume from step %d" % restored
  restored = assert_newest_checkpoint_restores(killed_dir)

  # 3: a random number of steps after the restart.
  third_kill = restored + rng.randint(6, 14)  # past at least one more checkpoint
  run = trainer(data_dir, killed_dir, train_steps=train_steps)
  run.wait_until(lambda: any(s >= third_kill for s in run.steps()), "step %d" % third_kill)
  assert run.kill() == -signal.SIGKILL
  kills.append(("step", max(run.steps())))
  restored = assert_newest_checkpoint_restores(killed_dir)
  assert 0 < restored < train_steps, kills

  run = trainer(data_dir, killed_dir, train_steps=train_steps)
  assert run.join() == 0, run.stderr[-4000:]
  assert min(run.steps()) == restored + 1 and max(run.steps()) == train_steps
  assert not os.path.exists(lock_lib.lock_path(killed_dir))
  assert straight.join() == 0, straight.stderr[-4000:]
  print("SIGKILLs (how, last step logged):", kills)

  assert assert_newest_checkpoint_restores(killed_dir) == train_steps
  a = checkpoint_tensors(os.path.join(straight_dir, "ckpt-%d" % train_steps))
  b = checkpoint_tensors(os.path.join(killed_dir, "ckpt-%d" % train_steps))
  assert set(a) == set(b)
  differ = [name for name in sorted(a) if not name.startswith("save_counter") and
            not np.array_equal(a[name], b[name])]
  assert not differ, "kills %s; differ from the uninterrupted run: %s" % (kills, differ)


def test_sigterm_saves_exits_0_and_the_next_run_resumes(data_dir, tmp_path):
  """While a trainer runs, a second one on its output_dir is refused (one line, exit 2);
  SIGTERM then makes the first save a checkpoint and exit 0; a rerun resumes from it."""
  out = str(tmp_path / "run")
  first = trainer(data_dir, out, train_steps=100000, save_every=100000)
  first.wait_until(lambda: len(first.steps()) >= 3, "3 training steps")
  second = trainer(data_dir, out, train_steps=100000, save_every=100000)
  assert second.join() == 2, second.stderr[-4000:]
  error = [l for l in second.err_lines if "error" in l]
  assert len(error) == 1 and "Traceback" not in second.stderr, second.stderr[-4000:]
  assert re.fullmatch(r"t2t-trainer: error: --output_dir=.* is in use by another trainer "
                      r"\(pid %d on host %s since .*" % (first.pid, re.escape(
                          socket.gethostname())), error[0]), error[0]
  assert first.proc.poll() is None, "the refused trainer stopped the first one"
  with open(lock_lib.lock_path(out)) as f:
    assert json.load(f)["pid"] == first.pid

  assert first.kill(signal.SIGTERM) == 0, first.stderr[-4000:]
  stopped = re.search(r"Stopped by SIGTERM at step (\d+); checkpoint saved", first.stdout)
  assert stopped, first.stdout
  step = int(stopped.group(1))
  assert step >= 3 and max(first.steps()) == step
  assert assert_newest_checkpoint_restores(out) == step
  assert not os.path.exists(lock_lib.lock_path(out))

  resumed = trainer(data_dir, out, train_steps=step + 3, save_every=100000)
  assert resumed.join() == 0, resumed.stderr[-4000:]
  assert resumed.steps() == [step + 1, step + 2, step + 3]
  assert assert_newest_checkpoint_restores(out) == step + 3


def _shard_state(data_dir):
  """{name: size} of the files in data_dir whose names are final shard names."""
  from t2t_lite.data import generator_utils  # pylint: disable=g-import-not-at-top
  state = {}
  for name in os.listdir(data_dir):
    if generator_utils.SHARD_RE.match(name):
      try:
        state[name] = os.path.getsize(os.path.join(data_dir, name))
      except FileNotFoundError:
        pass
  return state


def test_datagen_killed_midway_never_leaves_a_partial_shard_and_a_rerun_completes(tmp_path):
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  from t2t_lite.data import generator_utils  # pylint: disable=g-import-not-at-top
  import problems  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  name = "algorithmic_reverse_binary40"  # 111k examples in 12 shards: about a second
  data = str(tmp_path / "data")
  run = Script("t2t_datagen.py", "--problem=" + name, "--data_dir=" + data,
               "--tmp_dir=" + str(tmp_path / "tmp"))
  first_seen = {}  # shard name -> its size when it first appeared

  def watch():
    if os.path.isdir(data):
      for shard, size in _shard_state(data).items():
        first_seen.setdefault(shard, size)
    # Kill once a shard is complete and the next one is being written.
    return first_seen and any(".incomplete-" in n for n in os.listdir(data))

  run.wait_until(watch, "a complete shard and one being written", poll=0.001)
  assert run.kill() == -signal.SIGKILL
  problem = registry.problem(name)
  expected = {}
  for spec in problem.dataset_splits():
    size = problem.split_spec(spec["split"])[0]
    for i, path in enumerate(generator_utils.shard_paths(data, name, spec["split"],
                                                         spec["shards"])):
      expected[os.path.basename(path)] = size // spec["shards"] + (
          1 if i < size % spec["shards"] else 0)
  killed_state = _shard_state(data)
  assert 0 < len(killed_state) < len(expected), killed_state
  assert not problem.data_exists(data)
  for shard, size in killed_state.items():  # every final name is a complete shard
    assert first_seen.get(shard, size) == size, "%s grew after it appeared" % shard
    assert generator_utils.check_shard(os.path.join(data, shard)) == expected[shard]
  digests = {s: _sha(os.path.join(data, s)) for s in killed_state}

  rerun = Script("t2t_datagen.py", "--problem=" + name, "--data_dir=" + data,
                 "--tmp_dir=" + str(tmp_path / "tmp"))
  assert rerun.join() == 0, rerun.stderr[-4000:]
  assert problem.data_exists(data)
  names = os.listdir(data)
  assert not [n for n in names if ".incomplete-" in n], names
  assert set(_shard_state(data)) == set(expected)
  for shard, count in expected.items():
    assert generator_utils.check_shard(os.path.join(data, shard)) == count
  for shard, digest in digests.items():  # complete shards were kept, not rewritten
    assert _sha(os.path.join(data, shard)) == digest


def _sha(path):
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def _snapshot(*dirs):
  state = {}
  for top in dirs:
    for root, _, files in os.walk(top):
      for name in files:
        state[os.path.join(root, name)] = _sha(os.path.join(root, name))
  return state


@pytest.mark.parametrize("damage", ["bytes_in_the_middle", "garbage_payload"])
def test_corrupt_shard_is_an_error_naming_the_file(data_dir, tmp_path, damage):
  """A shard overwritten in its middle (checksums fail) or holding records that pass their
  checksums but do not parse: exit 2, the last stderr line names the shard, no traceback,
  and nothing already in data_dir or output_dir is lost or changed."""
  data = str(tmp_path / "data")
  shutil.copytree(data_dir, data)
  shard = os.path.join(data, "%s-train-00001-of-00002" % PROBLEM)
  if damage == "bytes_in_the_middle":
    with open(shard, "r+b") as f:
      size = os.path.getsize(shard)
      f.seek(size // 2)
      f.write(b"\xde\xad\xbe\xef" * 64)
  else:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(shard) as writer:
      for _ in range(50):
        writer.write(rng.bytes(int(rng.integers(1, 40))))
  out = str(tmp_path / "out")
  os.makedirs(out)
  with open(os.path.join(out, "notes.txt"), "w") as f:
    f.write("kept\n")
  before = _snapshot(data, out)
  run = trainer(data, out, train_steps=10)
  assert run.join() == 2, run.stderr[-4000:]
  assert "Traceback" not in run.stderr
  last = run.err_lines[-1]
  assert last.startswith("t2t-trainer: error: "), run.stderr[-4000:]
  assert "corrupt" in last and os.path.basename(shard) in last, last
  after = _snapshot(data, out)
  assert all(after.get(p) == h for p, h in before.items())
  assert not [p for p in after if re.search(r"\.tmp|_temp|tempstate|\.t2t_lock", p)]


def test_resume_with_dropout_matches_an_uninterrupted_run(data_dir, tmp_path):
  """With dropout, a run resumed from a checkpoint should still end where an uninterrupted
  run ends."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from t2t_lite import flags as t2t_flags  # pylint: disable=g-import-not-at-top
  from t2t_lite.training import Trainer  # pylint: disable=g-import-not-at-top
  import t2t_lite.models  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  tf.config.experimental.enable_op_determinism()
  hp = TINY.replace("dropout=0.0", "dropout=0.3")

  def make(out, steps):
    return Trainer(PROBLEM, "transformer",
                   t2t_flags.create_hparams("transformer_tiny", hp, problem_name=PROBLEM),
                   data_dir, str(out), steps, random_seed=7, save_checkpoints_steps=5,
                   log_step_count_steps=100)

  straight = make(tmp_path / "a", 10)
  straight.train()
  make(tmp_path / "b", 5).train()
  resumed = make(tmp_path / "b", 10)
  resumed.train()
  assert int(resumed.global_step.numpy()) == 10
  differ = [v.path for v, w in zip(straight.model.weights, resumed.model.weights)
            if not np.array_equal(v.numpy(), w.numpy())]
  assert not differ, "%d of %d weights differ" % (len(differ), len(straight.model.weights))


# ------------------------------------------------------------------------ the lock itself
def _dead_pid():
  proc = subprocess.Popen([sys.executable, "-c", "pass"])
  proc.wait()
  return proc.pid


def _write_lock(directory, **fields):
  record = {"pid": os.getpid(), "hostname": socket.gethostname(),
            "boot_id": lock_lib._boot_id(), "start_time": lock_lib._start_time(os.getpid()),
            "created": time.time(), "token": "someone-else", "command": "test"}
  record.update(fields)
  os.makedirs(directory, exist_ok=True)
  with open(lock_lib.lock_path(directory), "w") as f:
    f.write(json.dumps(record))
  return record


def test_lock_is_exclusive_and_released(tmp_path):
  out = str(tmp_path / "out")
  with lock_lib.OutputDirLock(out) as lock:
    assert lock.held and lock.took_over is None
    record = lock_lib.read_lock(lock_lib.lock_path(out))
    assert record["pid"] == os.getpid() and record["hostname"] == socket.gethostname()
    with pytest.raises(lock_lib.OutputDirLockedError, match="in use by another trainer"):
      lock_lib.OutputDirLock(out).acquire()  # a second lock in this very process
    assert issubclass(lock_lib.OutputDirLockedError, ConfigError)
  assert not os.path.exists(lock_lib.lock_path(out))
  lock.release()  # twice is fine


@pytest.mark.parametrize("why", ["dead_pid", "other_boot", "reused_pid", "same_pid",
                                 "unreadable_and_old"])
def test_a_stale_lock_is_taken_over(tmp_path, why):
  out = str(tmp_path / "out")
  if why == "dead_pid":
    _write_lock(out, pid=_dead_pid())
  elif why == "other_boot":
    _write_lock(out, boot_id="another-boot")
  elif why == "reused_pid":
    _write_lock(out, start_time=(lock_lib._start_time(os.getpid()) or 0) + 12345)
  elif why == "same_pid":  # a previous process that had this pid (a restarted container)
    _write_lock(out)
  else:
    os.makedirs(out)
    with open(lock_lib.lock_path(out), "w") as f:
      f.write("{trunc")
    old = time.time() - 3600
    os.utime(lock_lib.lock_path(out), (old, old))
  lock = lock_lib.OutputDirLock(out).acquire()
  assert lock.took_over
  assert lock_lib.read_lock(lock.path)["token"] == lock.record["token"]
  lock.release()
  assert not os.path.exists(lock.path)


@pytest.mark.parametrize("holder", ["live_pid", "other_host", "unreadable_and_new"])
def test_a_live_or_unknown_lock_is_respected(tmp_path, holder):
  out = str(tmp_path / "out")
  parent = os.getppid()
  if holder == "live_pid":
    _write_lock(out, pid=parent, start_time=lock_lib._start_time(parent))
  elif holder == "other_host":
    _write_lock(out, hostname="another-host.example", pid=_dead_pid())
  else:
    os.makedirs(out)
    with open(lock_lib.lock_path(out), "w") as f:
      f.write("")
  with open(lock_lib.lock_path(out)) as f:
    content = f.read()
  with pytest.raises(lock_lib.OutputDirLockedError) as info:
    lock_lib.OutputDirLock(out).acquire()
  assert "\n" not in str(info.value) and lock_lib.lock_path(out) in str(info.value)
  with open(lock_lib.lock_path(out)) as f:
    assert f.read() == content  # untouched


def test_release_leaves_a_lock_that_is_not_ours(tmp_path):
  out = str(tmp_path / "out")
  lock = lock_lib.OutputDirLock(out).acquire()
  _write_lock(out, token="taken-over-by-another")
  lock.release()
  assert lock_lib.read_lock(lock_lib.lock_path(out))["token"] == "taken-over-by-another"


@pytest.mark.parametrize("start", ["free", "stale"])
def test_racing_processes_get_the_lock_once(tmp_path, start):
  """Eight forked processes try at once (on a free or a stale lock): exactly one wins."""
  out = str(tmp_path / "out")
  os.makedirs(out)
  if start == "stale":
    _write_lock(out, pid=_dead_pid())
  results_r, results_w = os.pipe()
  hold_r, hold_w = os.pipe()
  go_r, go_w = os.pipe()
  children = []
  for _ in range(8):
    pid = os.fork()
    if pid == 0:  # child
      code = 1
      try:
        os.close(results_r)
        os.close(hold_w)
        os.close(go_w)
        os.read(go_r, 1)  # start together
        try:
          lock_lib.OutputDirLock(out).acquire()
          os.write(results_w, b"W")
        except lock_lib.OutputDirLockedError:
          os.write(results_w, b"L")
        os.read(hold_r, 1)  # hold until the parent has every answer
        code = 0
      finally:
        os._exit(code)
    children.append(pid)
  os.close(results_w)
  os.close(hold_r)
  os.close(go_r)
  os.write(go_w, b"g" * 8)
  answers = b""
  deadline = time.time() + 120
  while len(answers) < 8 and time.time() < deadline:
    chunk = os.read(results_r, 8)
    if not chunk:
      break
    answers += chunk
  os.close(hold_w)
  for pid in children:
    os.waitpid(pid, 0)
  os.close(results_r)
  os.close(go_w)
  assert sorted(answers) == sorted(b"W" + b"L" * 7), answers
