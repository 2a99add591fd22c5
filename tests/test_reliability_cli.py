"""Every row of README's Troubleshooting table: one line on stderr, exit code 2, no damage.

Each row runs the real script entry point (`console_main` of t2t-trainer / t2t-decoder) in a
process of its own and checks that

- the exit code is 2 and stderr is exactly one line `PROG: error: ...` matching the row,
- nothing that was in --data_dir or --output_dir before is changed or gone, and no temporary
  or half-written file (nor the output_dir lock) is left behind.

Starting Python and importing TensorFlow costs seconds per process on a small machine, and
almost every row fails before any TensorFlow work, so the rows share one *fork server*: a
subprocess (this file run as a script) that imports TensorFlow and the registrations once,
then forks a child per row. The child sets sys.argv, runs the script's console_main and
exits with its exit code; stdout and stderr go to files the test reads. The rows that need
TensorFlow to run (a corrupt shard is only found by reading it) are in test_reliability.py,
each in a fresh process.
"""
import hashlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
PROBLEM = "tiny_algo"
TINY = "hidden_size=16,filter_size=32,num_heads=2,num_hidden_layers=1,batch_size=64"
ROW_TIMEOUT = 120  # seconds per row, generous for a loaded machine
TEMP_MARKS = (".incomplete-", ".tmp-", "_temp", "tempstate", ".t2t_lock")


# ------------------------------------------------------------------------ the fork server
def _serve():
  """Runs as `python tests/test_reliability_cli.py --serve`: JSON requests on stdin."""
  sys.path.insert(0, REPO_ROOT)
  from t2t_lite.bin import common
  common.quiet_tensorflow()
  common.import_registrations(None)
  import t2t_lite.training  # noqa: F401  pylint: disable=unused-import
  from t2t_lite.bin import t2t_datagen
  from t2t_lite.bin import t2t_trainer
  scripts = {"t2t-trainer": t2t_trainer}
  try:
    from t2t_lite.bin import t2t_decoder  # pylint: disable=g-import-not-at-top
    scripts["t2t-decoder"] = t2t_decoder
  except Exception as e:  # pylint: disable=broad-except  (being written elsewhere)
    sys.stderr.write("no t2t-decoder: %r\n" % e)
  out = sys.stdout
  out.write(json.dumps({"ready": True}) + "\n")
  out.flush()
  for line in sys.stdin:
    request = json.loads(line)
    try:
      if request["op"] == "run":
        reply = _run_forked(scripts, request)
      elif request["op"] == "datagen":
        from t2t_lite import registry
        t2t_datagen.generate(registry.problem(request["problem"]), request["data_dir"],
                             request["data_dir"] + "_tmp", out=open(os.devnull, "w"))
        reply = {"ok": True}
      elif request["op"] == "hparams_json":
        from t2t_lite import flags as t2t_flags
        hp = t2t_flags.create_hparams(request["hparams_set"], request["hparams"],
                                      problem_name=request["problem"])
        reply = {"json": hp.to_json(indent=2)}
      else:
        reply = {"error": "unknown op"}
    except Exception as e:  # pylint: disable=broad-except
      reply = {"error": repr(e)}
    out.write(json.dumps(reply) + "\n")
    out.flush()


def _run_forked(scripts, request):
  """Forks; the child runs one script's console_main with request["argv"]."""
  stdout_path, stderr_path = request["stdout"], request["stderr"]
  pid = os.fork()
  if pid == 0:  # the child: never returns
    code = 70
    try:
      os.chdir(request.get("cwd") or REPO_ROOT)
      for fd, path in ((1, stdout_path), (2, stderr_path)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(f, fd)
        os.close(f)
      sys.stdin = open(os.devnull)
      sys.argv = [request["script"]] + list(request["argv"])
      try:
        scripts[request["script"]].console_main()
        code = 0
      except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # pylint: disable=broad-except
      import traceback  # pylint: disable=g-import-not-at-top
      traceback.print_exc()
      code = 70
    finally:
      try:
        sys.stdout.flush()
        sys.stderr.flush()
      finally:
        os._exit(code)
  deadline = time.time() + request.get("timeout", ROW_TIMEOUT)
  while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
      break
    if time.time() > deadline:
      os.kill(pid, signal.SIGKILL)
      os.waitpid(pid, 0)
      return {"rc": "timeout"}
    time.sleep(0.02)
  return {"rc": os.waitstatus_to_exitcode(status)}


# ------------------------------------------------------------------------ test side
class ForkServer:
  """The test's handle on the server process."""

  def __init__(self, env, tmp_dir):
    self.tmp_dir = tmp_dir
    self.count = 0
    self.proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"], cwd=REPO_ROOT, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reply = self._read(300)
    assert reply.get("ready"), reply

  def _read(self, timeout):
    ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
    if not ready:
      raise AssertionError("the fork server did not answer in %d s" % timeout)
    line = self.proc.stdout.readline()
    if not line:
      raise AssertionError("the fork server died: %s" % self.proc.stderr.read()[-3000:])
    return json.loads(line)

  def request(self, timeout=ROW_TIMEOUT + 30, **request):
    self.proc.stdin.write(json.dumps(request) + "\n")
    self.proc.stdin.flush()
    reply = self._read(timeout)
    assert "error" not in reply, reply
    return reply

  def run(self, script, argv, timeout=ROW_TIMEOUT):
    """(exit code, stdout, stderr) of `script argv` run in a forked child."""
    self.count += 1
    out = os.path.join(self.tmp_dir, "row%d.out" % self.count)
    err = os.path.join(self.tmp_dir, "row%d.err" % self.count)
    reply = self.request(op="run", script=script, argv=list(argv), stdout=out, stderr=err,
                         timeout=timeout)
    with open(out) as f_out, open(err) as f_err:
      return reply["rc"], f_out.read(), f_err.read()

  def close(self):
    if self.proc.poll() is None:
      self.proc.stdin.close()
      try:
        self.proc.wait(timeout=30)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
  env = dict(os.environ)
  env["TF_CPP_MIN_LOG_LEVEL"] = "3"
  env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
  handle = ForkServer(env, str(tmp_path_factory.mktemp("rows")))
  yield handle
  handle.close()


@pytest.fixture(scope="module")
def data_dir(server, tmp_path_factory):
  path = str(tmp_path_factory.mktemp("data"))
  server.request(op="datagen", problem=PROBLEM, data_dir=path)
  assert any(name.startswith(PROBLEM + "-train-") for name in os.listdir(path))
  return path


def snapshot(*dirs):
  """{path: sha256 of its content, or "dir"} of everything under `dirs`."""
  state = {}
  for top in dirs:
    for root, subdirs, files in os.walk(top):
      for d in subdirs:
        state[os.path.join(root, d)] = "dir"
      for name in files:
        path = os.path.join(root, name)
        with open(path, "rb") as f:
          state[path] = hashlib.sha256(f.read()).hexdigest()
  return state


def assert_nothing_lost_or_half_written(before, after):
  lost = {p for p in before if p not in after}
  changed = {p for p in before if p in after and before[p] != after[p]}
  assert not lost, "lost: %s" % sorted(lost)
  assert not changed, "changed: %s" % sorted(changed)
  partial = [p for p in after if any(m in os.path.basename(p) for m in TEMP_MARKS)]
  assert not partial, "temporary or lock files left: %s" % partial


def assert_one_line_error(rc, stderr, prog, pattern):
  assert rc == 2, "exit code %r; stderr:\n%s" % (rc, stderr[-3000:])
  lines = stderr.splitlines()
  assert len(lines) == 1, "not one line:\n%s" % stderr[-3000:]
  assert lines[0].startswith(prog + ": error: "), lines[0]
  assert re.search(pattern, lines[0]), "%r does not match %r" % (lines[0], pattern)
  assert "Traceback" not in stderr


def trainer_args(data, out, **overrides):
  """t2t-trainer's arguments for a tiny run; `overrides` replace flags (None drops one)."""
  flags = {"problem": PROBLEM, "model": "transformer", "hparams_set": "transformer_tiny",
           "hparams": TINY, "data_dir": data, "output_dir": out,
           "train_steps": "5", "schedule": "train"}
  flags.update(overrides)
  return ["--%s=%s" % (k, v) for k, v in flags.items() if v is not None]


BROKEN_MODULE = '''
"""A user module that fails on import."""
X = 1


def helper():
  return {}["no such key"]


helper()
'''


def _usr_dir_raising(tmp):
  usr = os.path.join(tmp, "usr_broken")
  os.makedirs(usr)
  with open(os.path.join(usr, "broken_defs.py"), "w") as f:
    f.write(BROKEN_MODULE)
  return usr


def _readonly_output_dir(tmp):
  # Tests often run as root, for whom chmod does not block writes: a path under a regular
  # file cannot be created by anyone.
  blocker = os.path.join(tmp, "a_file")
  with open(blocker, "w") as f:
    f.write("not a directory\n")
  return os.path.join(blocker, "run")


# (id, script, overrides of trainer_args (or a function of (tmp) giving them), the pattern
#  the error line must match). The same rows are README's Troubleshooting table.
TRAINER_ROWS = [
    ("unknown_problem", dict(problem="tiny_alog"),
     r"unknown problem.*did you mean 'tiny_algo'"),
    ("unknown_model", dict(model="transfromer"),
     r"unknown model.*did you mean 'transformer'"),
    ("unknown_hparams_set", dict(hparams_set="transformer_tinny"),
     r"unknown hparams set.*did you mean 'transformer_tiny'"),
    ("hparams_unknown_key", dict(hparams=TINY + ",hiden_size=8"),
     r"unknown hparam 'hiden_size'. Did you mean 'hidden_size'"),
    ("hparams_wrong_type", dict(hparams=TINY + ",learning_rate_warmup_steps=2.5"),
     r"learning_rate_warmup_steps is an int hparam; '2\.5' is not an integer"),
    ("hparams_broken_syntax", dict(hparams="hidden_size=16,,filter_size=[32"),
     r"Could not parse hparams|expected NAME=VALUE|closing"),
    ("hparams_twice", dict(hparams=TINY + ",hidden_size=32"), r"hidden_size is set twice"),
    ("negative_train_steps", dict(train_steps="-5"), r"--train_steps=-5: must be >= 0"),
    ("non_integer_train_steps", dict(train_steps="ten"), r"train_steps"),
    ("unknown_schedule", dict(schedule="trian"), r"--schedule=trian: unknown schedule"),
    ("missing_flag", dict(model=None), r"--model is required"),
    ("data_dir_missing", lambda tmp: dict(data_dir=os.path.join(tmp, "no_such_dir")),
     r"no train data for problem tiny_algo .*t2t-datagen --problem=tiny_algo"),
    ("data_dir_empty", lambda tmp: dict(data_dir=_mkdir(tmp, "empty_data")),
     r"no train data for problem tiny_algo .*t2t-datagen --problem=tiny_algo"),
    ("output_dir_not_writable", lambda tmp: dict(output_dir=_readonly_output_dir(tmp)),
     r"--output_dir=.* is not writable"),
    ("usr_dir_missing", lambda tmp: dict(t2t_usr_dir=os.path.join(tmp, "no_such_usr")),
     r"--t2t_usr_dir=.*no such directory, \.py file or module"),
    ("usr_dir_raises", lambda tmp: dict(t2t_usr_dir=_usr_dir_raising(tmp)),
     r"importing it raised KeyError: 'no such key' \(.*broken_defs\.py:\d+\)"),
    ("use_tpu_without_tpu", dict(use_tpu="true"), r"--use_tpu.*no TPU could be reached"),
    ("unknown_distribution_strategy", dict(distribution_strategy="mirorred"),
     r"distribution_strategy"),
]


def _mkdir(tmp, name):
  path = os.path.join(tmp, name)
  os.makedirs(path, exist_ok=True)
  return path


def _prepare_output_dir(tmp):
  """An output_dir that already holds files a failed run must not touch."""
  out = os.path.join(tmp, "out")
  os.makedirs(out)
  with open(os.path.join(out, "notes.txt"), "w") as f:
    f.write("written before the run\n")
  return out


@pytest.mark.parametrize("row_id,overrides,pattern", TRAINER_ROWS,
                         ids=[r[0] for r in TRAINER_ROWS])
def test_trainer_bad_input_is_one_line_and_exit_2(server, data_dir, tmp_path, row_id,
                                                  overrides, pattern):
  tmp = str(tmp_path)
  out = _prepare_output_dir(tmp)
  if callable(overrides):
    overrides = overrides(tmp)
  argv = trainer_args(data_dir, out, **overrides)
  before = snapshot(data_dir, out)
  rc, _, stderr = server.run("t2t-trainer", argv)
  assert_one_line_error(rc, stderr, "t2t-trainer", pattern)
  after = snapshot(data_dir, out)
  assert_nothing_lost_or_half_written(before, after)
  # These rows fail before training, so they write nothing at all.
  assert set(after) == set(before), sorted(set(after) - set(before))


def test_trainer_hparams_conflicting_with_saved_ones(server, data_dir, tmp_path):
  out = _prepare_output_dir(str(tmp_path))
  saved = server.request(op="hparams_json", hparams_set="transformer_tiny", hparams=TINY,
                         problem=PROBLEM)["json"]
  with open(os.path.join(out, "hparams.json"), "w") as f:
    f.write(saved + "\n")
  before = snapshot(data_dir, out)
  rc, _, stderr = server.run(
      "t2t-trainer", trainer_args(data_dir, out, hparams=TINY.replace("hidden_size=16",
                                                                      "hidden_size=32")))
  assert_one_line_error(rc, stderr, "t2t-trainer",
                        r"hparams differ from the ones saved in .*hparams\.json: "
                        r"hidden_size: saved 16, new 32.*--overwrite_output_hparams")
  after = snapshot(data_dir, out)
  assert_nothing_lost_or_half_written(before, after)
  assert set(after) == set(before)


def test_trainer_output_dir_locked_by_a_live_process(server, data_dir, tmp_path):
  """A lock held by a live process (this one) on this host: refused, lock left alone."""
  out = _prepare_output_dir(str(tmp_path))
  import socket  # pylint: disable=g-import-not-at-top
  from t2t_lite.utils import lock as lock_lib  # pylint: disable=g-import-not-at-top
  record = {"pid": os.getpid(), "hostname": socket.gethostname(),
            "boot_id": lock_lib._boot_id(), "start_time": lock_lib._start_time(os.getpid()),
            "created": time.time(), "token": "test", "command": "pytest"}
  with open(lock_lib.lock_path(out), "w") as f:
    f.write(json.dumps(record))
  before = snapshot(data_dir, out)
  rc, _, stderr = server.run("t2t-trainer", trainer_args(data_dir, out))
  assert_one_line_error(rc, stderr, "t2t-trainer",
                        r"--output_dir=.* is in use by another trainer \(pid %d on host "
                        % os.getpid())
  assert snapshot(data_dir, out) == before


DECODER_ROWS = [
    ("missing_decode_from_file",
     lambda tmp: ["--decode_from_file=" + os.path.join(tmp, "no_such_inputs.txt")],
     r"no_such_inputs\.txt"),
    ("unknown_problem", lambda tmp: ["--problem=tiny_alog"],
     r"unknown problem.*did you mean 'tiny_algo'"),
    ("no_checkpoint", lambda tmp: [], r"checkpoint"),
]


@pytest.mark.parametrize("row_id,extra,pattern", DECODER_ROWS,
                         ids=[r[0] for r in DECODER_ROWS])
def test_decoder_bad_input_is_one_line_and_exit_2(server, data_dir, tmp_path, row_id, extra,
                                                  pattern):
  tmp = str(tmp_path)
  out = _prepare_output_dir(tmp)
  inputs = os.path.join(tmp, "inputs.txt")
  with open(inputs, "w") as f:
    f.write("0 1 1\n")  # tiny_algo's symbols are 0 and 1
  argv = ["--problem=" + PROBLEM, "--model=transformer", "--hparams_set=transformer_tiny",
          "--data_dir=" + data_dir, "--output_dir=" + out, "--decode_from_file=" + inputs]
  argv += extra(tmp)
  before = snapshot(data_dir, out)
  rc, _, stderr = server.run("t2t-decoder", argv)
  assert_one_line_error(rc, stderr, "t2t-decoder", pattern)
  after = snapshot(data_dir, out)
  assert_nothing_lost_or_half_written(before, after)
  assert set(after) == set(before)


# What README's Troubleshooting table must show for the rows above (and the process-level
# rows of test_reliability.py: a corrupt shard, a second trainer).
README_KEYS = [
    "--problem=tiny_alog", "did you mean 'tiny_algo'", "--model=transfromer",
    "--hparams_set=transformer_tinny", "unknown hparam 'hiden_size'",
    "learning_rate_warmup_steps is an int hparam", "the list has no closing", "is set twice",
    "--train_steps=-5: must be >= 0", "--train_steps=ten", "--schedule=trian: unknown schedule",
    "--model is required", "no train data for problem", "is corrupt or truncated",
    "is not writable", "The hparams differ from the ones saved in",
    "is in use by another trainer", "no such directory, .py file or module",
    "importing it raised", "no TPU could be reached", "--distribution_strategy=mirorred",
    "--decode_from_file=F: no such file", "no checkpoint in --output_dir",
]


def test_readme_troubleshooting_table_has_every_row():
  with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
    text = f.read()
  section = text.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
  assert "| what you run | what you see | what to do |" in section
  missing = [key for key in README_KEYS if key not in section]
  assert not missing, "README's Troubleshooting table lacks: %s" % missing


if __name__ == "__main__" and "--serve" in sys.argv:
  _serve()
