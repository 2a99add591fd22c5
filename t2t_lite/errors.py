"""Errors a user can cause.

Every error a user can cause by a flag, a name, a file or an output_dir derives from
`T2TUserError`. The scripts catch exactly these, print `t2t-<script>: error: <one line>` on
stderr and exit with code 2; anything else is a bug and keeps its traceback. Each class also
derives from the builtin that describes it, so `except ValueError` keeps working.
"""


class T2TUserError(Exception):
  """Base class: a mistake the user can fix. The message says what to do."""


class UnknownNameError(T2TUserError, KeyError):
  """A problem, model, hparams set or schedule name that is not registered (a KeyError, as
  tensor2tensor's registry raised, so code written for it keeps catching it)."""

  def __str__(self):
    # LookupError/KeyError would quote the message; show it as written.
    return str(self.args[0]) if self.args else ""


class RegistrationError(T2TUserError, ValueError):
  """A name registered twice for different objects, or an invalid name."""


class HParamsError(T2TUserError, ValueError):
  """A malformed or ill-typed `--hparams` string, an unknown hparam, or a conflict."""


class DataNotFoundError(T2TUserError, FileNotFoundError):
  """The data a problem needs is not in data_dir (the message gives the datagen command)."""

  def __str__(self):
    return str(self.args[0]) if self.args else ""


class CorruptDataError(T2TUserError, IOError):
  """A data shard that cannot be read (truncated, corrupt); the message names the file."""

  def __str__(self):
    return str(self.args[0]) if self.args else ""


class ConfigError(T2TUserError, ValueError):
  """Flags that cannot work together, or that conflict with an output_dir's saved state."""


class CheckpointNotFoundError(T2TUserError, FileNotFoundError):
  """An output_dir with no checkpoint where one is needed."""

  def __str__(self):
    return str(self.args[0]) if self.args else ""


class CheckpointUnreadableError(T2TUserError, IOError):
  """An output_dir whose checkpoints all fail to restore (the message names each one)."""

  def __str__(self):
    return str(self.args[0]) if self.args else ""


class OutputWriteError(T2TUserError, OSError):
  """A file could not be written (a full disk, a read-only folder, a file-size limit). The
  message names what and where, the free space seen, and what complete files are kept. The
  scripts exit with code 3 for it (2 is a mistake in the input), so a scheduler can tell
  "retry elsewhere" from "fix the command"."""
  exit_code = 3

  def __str__(self):
    return str(self.args[0]) if self.args else ""
