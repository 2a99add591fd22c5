"""What the three scripts share: quiet start-up and user errors as one line with exit code 2."""
import os
import sys


def quiet_tensorflow():
  """Imports TensorFlow without its start-up chatter on stderr.

  TensorFlow 2.21 prints its C++ start-up notices (oneDNN, "Could not find cuda drivers")
  before its logging is set up, so TF_CPP_MIN_LOG_LEVEL cannot silence them; stderr is sent to
  a temporary file during the import instead, and replayed if the import fails. Set
  T2T_VERBOSE=1 to see everything.
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  os.environ.setdefault("KERAS_BACKEND", "tensorflow")
  if os.environ.get("T2T_VERBOSE") or "tensorflow" in sys.modules:
    return
  import tempfile  # pylint: disable=g-import-not-at-top
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    except BaseException:
      os.dup2(saved, 2)
      captured.seek(0)
      sys.stderr.write(captured.read().decode("utf-8", "replace"))
      raise
    finally:
      os.dup2(saved, 2)
      os.close(saved)


def fail(prog, message, code=2):
  """Prints `prog: error: message` as one line on stderr and exits with `code`."""
  one_line = " ".join(str(message).split())
  sys.stderr.write("%s: error: %s\n" % (prog, one_line))
  sys.stderr.flush()
  # os._exit skips TensorFlow's atexit handlers, which can hang or print after a failure.
  os._exit(code)


HELP_FLAGS = ("-h", "--help", "--helpshort", "--helpfull", "-?")


def run_main(main, prog, doc=None):
  """Runs an absl `main(argv)`; `T2TUserError`s and flag errors become one line and exit 2
  (3 for an `OutputWriteError`: a full or unwritable disk).

  `--help` prints `doc` and the t2t_lite flags and exits 0, without starting TensorFlow.
  Set T2T_TRACEBACK=1 to see the traceback of a user error too.
  """
  from absl import app
  from absl import flags as absl_flags

  import t2t_lite.flags  # noqa: F401  (defines the shared flags)
  from t2t_lite.errors import T2TUserError

  if any(arg in HELP_FLAGS for arg in sys.argv[1:]):
    if doc:
      print(doc.strip() + "\n")
    print(absl_flags.FLAGS.module_help("t2t_lite.flags"))
    sys.exit(0)
  # Parse the flags ourselves so absl's flag errors (an unknown --schedule value, a bad int)
  # are one line and exit 2 too. Unknown arguments (--hp_NAME VALUE) stay in argv for main.
  try:
    argv = absl_flags.FLAGS(sys.argv, known_only=True)
  except absl_flags.Error as e:
    fail(prog, e)
  quiet_tensorflow()

  def wrapped(argv):
    try:
      return main(argv)
    except T2TUserError as e:
      if os.environ.get("T2T_TRACEBACK"):
        raise
      fail(prog, e, getattr(e, "exit_code", 2))

  app.run(wrapped, argv=argv, flags_parser=lambda a: a)


def import_registrations(usr_dirs):
  """Registers the built-in problems, models and hparams sets, then each --t2t_usr_dir."""
  import problems  # noqa: F401  pylint: disable=unused-import
  import t2t_lite.models  # noqa: F401  pylint: disable=unused-import
  from t2t_lite import usr_dir
  usr_dir.import_usr_dirs(usr_dirs)


def start(argv):
  """What t2t-trainer and t2t-decoder do first: the `--hp_NAME VALUE` arguments of argv into
  --hparams, then the built-in registrations and each --t2t_usr_dir imported. Returns True
  when --registry_help asked for the list of registered names, which it has printed (the
  script then returns 0)."""
  from absl import flags as absl_flags

  from t2t_lite import flags as t2t_flags
  from t2t_lite import registry
  t2t_flags.set_hparams_from_args(argv[1:])
  import_registrations(absl_flags.FLAGS.t2t_usr_dir)
  if absl_flags.FLAGS.registry_help:
    print(registry.help_string())
    return True
  return False


def require_flags(*names):
  """A ConfigError naming the first of `names` that is unset."""
  from absl import flags as absl_flags

  from t2t_lite.errors import ConfigError
  for name in names:
    value = absl_flags.FLAGS[name].value
    if value is None or value == "":
      raise ConfigError("--%s is required (see --help)." % name)
