"""Relative timing for log lines."""
import datetime
import time

from absl import logging


def format_elapsed(seconds):
  """`H:MM:SS.ffffff`, the form `str(datetime.timedelta)` gives."""
  return str(datetime.timedelta(seconds=seconds))


def make_relative_timing_fn():
  """Returns a function that logs and returns the time since this call.

  `log_relative_time(message="")` logs `Timing: H:MM:SS.ffffff` (plus the message) at INFO and
  returns the same text. (tensor2tensor's version logged but returned nothing, so callers could
  not put the time into their own lines.)

  Example:
    log_relative_time = make_relative_timing_fn()
    ...
    log_relative_time("world model trained")  # -> "Timing: 0:00:12.345678 world model trained"
  """
  start = time.time()

  def log_relative_time(message=""):
    text = "Timing: %s" % format_elapsed(time.time() - start)
    if message:
      text += " " + message
    logging.info(text)
    return text

  return log_relative_time
