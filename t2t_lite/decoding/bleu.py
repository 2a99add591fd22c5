"""BLEU of translations against a reference, with sacreBLEU (the standard corpus BLEU).

    bleu_score(["The cat sat on the mat ."], ["The cat sat on a mat ."])   # 0-100
    file_bleu("decodes.de", "newstest2014.de")   # {"BLEU_uncased": 27.9, "BLEU_cased": 27.3}
    for stepfile, scores in score_translations_dir("translations", "newstest2014.de",
                                                   event_dir="events"):
      ...

The scores are sacreBLEU's corpus BLEU with its default "13a" tokenization, so they compare
with published results (tensor2tensor's t2t-bleu computed its own, close to it). Cased BLEU
compares the text as written; uncased lowercases both sides first.

A translations directory (tensor2tensor's t2t-translate-all layout) holds one file of
translations per checkpoint, named with its step: NAME-STEP (the step is what `id_pattern`,
a regular expression searched in the file name, captures in its first group). Each file is
scored in step order; with an event_dir each gets one TensorBoard event (tags BLEU_uncased and
BLEU_cased, plus `tag_suffix`) at its step, stamped with the file's modification time, and
EVENT_DIR/last_evaluated_step.txt records how far a run got, so the next one goes on from
there.
"""
import collections
import os
import re
import time

from absl import logging

from t2t_lite import output_dir as output_dir_lib
from t2t_lite.errors import ConfigError

VARIANTS = ("both", "uncased", "cased")
DEFAULT_ID_PATTERN = r"-([0-9]+)$"  # NAME-STEP, as t2t-translate-all names its files
LAST_STEP_FILENAME = "last_evaluated_step.txt"

StepFile = collections.namedtuple("StepFile", "path step mtime")


def _gfile():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile


def bleu_score(hypotheses, references, case_sensitive=True, tokenize="13a"):
  """sacreBLEU's corpus BLEU (0-100) of `hypotheses` against `references`, line by line.

  Args:
    hypotheses: the translations, one string per segment.
    references: the reference translation of each segment (as many strings).
    case_sensitive: False lowercases both sides first (uncased BLEU).
    tokenize: sacreBLEU's tokenizer ("13a", its default; "intl", "zh", "ja-mecab", ...).

  Raises:
    ValueError: different numbers of hypotheses and references.
  """
  from sacrebleu.metrics import BLEU  # pylint: disable=g-import-not-at-top
  hypotheses, references = list(hypotheses), list(references)
  if len(hypotheses) != len(references):
    raise ValueError("%d hypotheses but %d references" % (len(hypotheses), len(references)))
  metric = BLEU(lowercase=not case_sensitive, tokenize=tokenize)
  return float(metric.corpus_score(hypotheses, [references]).score)


def tags(variant="both", tag_suffix=""):
  """{tag: case_sensitive} of a --bleu_variant, in the order t2t-bleu prints them."""
  if variant not in VARIANTS:
    raise ConfigError("--bleu_variant=%s: use one of %s." % (variant, ", ".join(VARIANTS)))
  chosen = {}
  if variant in ("uncased", "both"):
    chosen["BLEU_uncased" + tag_suffix] = False
  if variant in ("cased", "both"):
    chosen["BLEU_cased" + tag_suffix] = True
  return chosen


def format_score(tag, score):
  """`BLEU_cased =  27.30`: tensor2tensor's t2t-bleu line ("%6.2f")."""
  return "%s = %6.2f" % (tag, score)


def read_lines(path, flag=None):
  """The lines of a text file (UTF-8), without line ends.

  Raises:
    ConfigError: no such file (named as `flag`=PATH, e.g. "--reference", when given).
  """
  gfile = _gfile()
  if not path or not gfile.exists(path) or gfile.isdir(path):
    raise ConfigError("%s: no such file." % ("%s=%s" % (flag, path) if flag else path))
  with gfile.GFile(path, "rb") as f:
    text = f.read().decode("utf-8", "replace")
  lines = text.split("\n")
  if lines and not lines[-1]:
    lines.pop()  # the newline that ends the last line
  return [line.rstrip("\r") for line in lines]


def file_bleu(translation, reference, variant="both", tag_suffix="", tokenize="13a",
              reference_lines=None, label=None):
  """{tag: BLEU} of the translation file against the reference file, per variant.

  Args:
    translation: the translations, one line per line of the reference.
    reference: the reference translation file.
    variant, tag_suffix: which tags (`tags`).
    tokenize: sacreBLEU's tokenizer.
    reference_lines: the reference's lines, when already read.
    label: how errors name the translation (default "--translation=PATH").

  Raises:
    ConfigError: a file is missing, or the two have different numbers of lines.
  """
  chosen = tags(variant, tag_suffix)
  if reference_lines is None:
    reference_lines = read_lines(reference, "--reference")
  hypotheses = read_lines(translation, None if label else "--translation")
  label = label or "--translation=%s" % translation
  if len(hypotheses) != len(reference_lines):
    raise ConfigError(
        "%s has %d lines but --reference=%s has %d: line i of the translation must translate "
        "line i of the reference." % (label, len(hypotheses), reference, len(reference_lines)))
  return {tag: bleu_score(hypotheses, reference_lines, case_sensitive, tokenize)
          for tag, case_sensitive in chosen.items()}


# -- a directory of translations, one per checkpoint -------------------------------------------


def step_files(translations_dir, id_pattern=DEFAULT_ID_PATTERN, min_steps=0):
  """The files of translations_dir whose name `id_pattern` finds a step in (its first
  group), with a step >= min_steps, in step order.

  Raises:
    ConfigError: id_pattern is not a regular expression with a group.
  """
  try:
    pattern = re.compile(id_pattern)
  except re.error as e:
    raise ConfigError("--id_pattern=%s: not a regular expression (%s)." % (id_pattern, e))
  if pattern.groups < 1:
    raise ConfigError("--id_pattern=%s: needs a group, e.g. %s, that captures the step." %
                      (id_pattern, DEFAULT_ID_PATTERN))
  gfile = _gfile()
  found = []
  for name in gfile.listdir(translations_dir):
    match = pattern.search(name)
    path = os.path.join(translations_dir, name)
    if not match or not match.group(1) or not match.group(1).isdigit() or gfile.isdir(path):
      continue
    step = int(match.group(1))
    if step >= min_steps:
      try:
        found.append(StepFile(path, step, gfile.stat(path).mtime_nsec / 1e9))
      except gfile_errors():  # deleted meanwhile
        continue
  return sorted(found, key=lambda f: (f.step, f.path))


def gfile_errors():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return (OSError, tf.errors.OpError)


def follow_step_files(translations_dir, id_pattern=DEFAULT_ID_PATTERN, min_steps=0,
                      wait_minutes=0, poll_secs=10):
  """Yields the step files of translations_dir in step order, then (with wait_minutes) each
  new one with a higher step as it appears, until none has for wait_minutes.

  Raises:
    ConfigError: translations_dir does not exist (after waiting wait_minutes for it).
  """
  gfile = _gfile()
  deadline = time.time() + wait_minutes * 60
  while not gfile.isdir(translations_dir):
    if time.time() >= deadline:
      raise ConfigError("--translations_dir=%s: no such directory." % translations_dir)
    time.sleep(poll_secs)
  while True:
    pending = step_files(translations_dir, id_pattern, min_steps)
    for stepfile in pending:
      yield stepfile
      min_steps = stepfile.step + 1
    if pending:
      deadline = time.time() + wait_minutes * 60
    elif time.time() >= deadline:
      return
    else:
      time.sleep(poll_secs)


def last_evaluated_step(event_dir):
  """The step in EVENT_DIR/last_evaluated_step.txt, or None."""
  gfile = _gfile()
  path = os.path.join(event_dir, LAST_STEP_FILENAME) if event_dir else None
  if not path or not gfile.exists(path):
    return None
  with gfile.GFile(path, "r") as f:
    text = f.read().strip()
  if not text.isdigit():
    raise ConfigError("%s holds %r, not a step: delete it, or pass --min_steps." % (path, text))
  return int(text)


class BleuEventWriter:
  """Writes BLEU scores as TensorBoard scalars, one event per step, at a given wall time."""

  def __init__(self, event_dir):
    from tensorboard.summary.writer.event_file_writer import EventFileWriter  # pylint: disable=g-import-not-at-top
    self.event_dir = event_dir
    try:
      _gfile().makedirs(event_dir)
      self._writer = EventFileWriter(event_dir)
    except gfile_errors() as e:
      raise output_dir_lib.write_failed("the events in", event_dir, e) from None

  def write(self, scores, step, wall_time):
    from tensorboard.compat.proto import event_pb2  # pylint: disable=g-import-not-at-top
    from tensorboard.compat.proto import summary_pb2  # pylint: disable=g-import-not-at-top
    summary = summary_pb2.Summary(value=[
        summary_pb2.Summary.Value(tag=tag, simple_value=score) for tag, score in scores.items()])
    self._writer.add_event(event_pb2.Event(wall_time=wall_time, step=step, summary=summary))
    self._writer.flush()
    output_dir_lib.write_text_atomically(os.path.join(self.event_dir, LAST_STEP_FILENAME),
                                         "%d\n" % step, "the last evaluated step")

  def close(self):
    self._writer.close()


def score_translations_dir(translations_dir, reference, event_dir=None, variant="both",
                           tag_suffix="", min_steps=-1, wait_minutes=0, report_zero=None,
                           id_pattern=DEFAULT_ID_PATTERN, tokenize="13a", poll_secs=10):
  """Scores each translation file of translations_dir (see the module docstring); yields
  (StepFile, {tag: BLEU}) in step order.

  Args:
    translations_dir: one file of translations per checkpoint, NAME-STEP.
    reference: the reference translation file.
    event_dir: where to write the TensorBoard events (None: none are written).
    variant: "both", "uncased" or "cased".
    tag_suffix: appended to the tags (e.g. "_beam4").
    min_steps: leave out files with fewer steps; -1: after the step in
      EVENT_DIR/last_evaluated_step.txt when there is one, else none.
    wait_minutes: wait up to this long for each new file (0: score what is there).
    report_zero: also write BLEU 0 at step 0, stamped with the oldest file's time, so
      TensorBoard's relative time axis starts at the run's start; None: when min_steps is 0.
    id_pattern: a regular expression whose first group is the step in a file's name.
    tokenize: sacreBLEU's tokenizer.
    poll_secs: how often to look for new files while waiting.

  Raises:
    ConfigError: a missing file or directory, a translation with another number of lines
      than the reference (named), or no file named with a step in translations_dir.
  """
  chosen = tags(variant, tag_suffix)
  reference_lines = read_lines(reference, "--reference")
  if min_steps is None or min_steps < 0:
    last = last_evaluated_step(event_dir)
    min_steps = 0 if last is None else last + 1
  if report_zero is None:
    report_zero = min_steps == 0
  writer = BleuEventWriter(event_dir) if event_dir else None
  scored = 0
  try:
    for stepfile in follow_step_files(translations_dir, id_pattern, min_steps, wait_minutes,
                                      poll_secs):
      if writer is not None and report_zero and stepfile.step > 0:
        oldest = min(f.mtime for f in step_files(translations_dir, id_pattern, 0))
        writer.write({tag: 0.0 for tag in chosen}, 0, oldest)
        report_zero = False
      logging.info("Evaluating %s", stepfile.path)
      scores = file_bleu(stepfile.path, reference, variant, tag_suffix, tokenize,
                         reference_lines=reference_lines, label=stepfile.path)
      if writer is not None:
        writer.write(scores, stepfile.step, stepfile.mtime)
      scored += 1
      yield stepfile, scores
  finally:
    if writer is not None:
      writer.close()
  if not scored and not step_files(translations_dir, id_pattern, 0):
    raise ConfigError(
        "--translations_dir=%s has no translations named with a step (--id_pattern=%s, e.g. "
        "NAME-1000)." % (translations_dir, id_pattern))


__all__ = ["DEFAULT_ID_PATTERN", "LAST_STEP_FILENAME", "VARIANTS", "BleuEventWriter",
           "StepFile", "bleu_score", "file_bleu", "follow_step_files", "format_score",
           "last_evaluated_step", "read_lines", "score_translations_dir", "step_files", "tags"]
