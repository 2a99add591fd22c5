"""t2t-bleu and `t2t_lite.decoding.bleu`: sacreBLEU scores printed as tensor2tensor printed
them, a directory of per-checkpoint translations scored into TensorBoard events, and bad input
as one line with exit code 2."""
import glob
import os
import subprocess
import sys

import pytest
import sacrebleu
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver

from t2t_lite.bin import t2t_bleu
from t2t_lite.decoding import bleu
from t2t_lite.errors import ConfigError

REFERENCE = ["The cat sat on the mat .", "A dog barked loudly at night ."]
TRANSLATION = ["the cat sat on the mat .", "A dog barked at night ."]


def write(path, lines, end="\n"):
  path.write_text("\n".join(lines) + end)
  return str(path)


def run_main(**flag_values):
  """t2t-bleu's main in this process, with these flags set."""
  was_parsed = flags.FLAGS.is_parsed()
  if not was_parsed:
    flags.FLAGS.mark_as_parsed()
  try:
    with flagsaver.flagsaver(**flag_values):
      return t2t_bleu.main(["t2t-bleu"])
  finally:
    if not was_parsed:
      flags.FLAGS.unparse_flags()


def read_events(event_dir):
  """[(step, wall_time, {tag: value})] of the scalar events in event_dir, in order."""
  events = []
  for path in sorted(glob.glob(os.path.join(event_dir, "events.out.tfevents.*"))):
    for record in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(record.numpy())
      if event.summary.value:
        events.append((event.step, event.wall_time,
                       {v.tag: v.simple_value for v in event.summary.value}))
  return events


def test_bleu_score_is_sacrebleu_corpus_bleu():
  cased = sacrebleu.corpus_bleu(TRANSLATION, [REFERENCE]).score
  uncased = sacrebleu.corpus_bleu(TRANSLATION, [REFERENCE], lowercase=True).score
  assert bleu.bleu_score(TRANSLATION, REFERENCE) == pytest.approx(cased)
  assert bleu.bleu_score(TRANSLATION, REFERENCE, case_sensitive=False) == pytest.approx(uncased)
  assert round(cased, 2) == 63.11 and round(uncased, 2) == 73.82
  assert bleu.bleu_score(REFERENCE, REFERENCE) == pytest.approx(100.0)
  assert bleu.bleu_score(["x y z w"] * 2, REFERENCE) == 0.0
  with pytest.raises(ValueError, match="1 hypotheses but 2 references"):
    bleu.bleu_score(TRANSLATION[:1], REFERENCE)


def test_one_file_prints_like_tensor2tensor(tmp_path, capsys):
  reference = write(tmp_path / "ref.txt", REFERENCE)
  translation = write(tmp_path / "hyp.txt", TRANSLATION, end="")  # no final newline: same
  assert run_main(translation=translation, reference=reference) == 0
  assert capsys.readouterr().out == "BLEU_uncased =  73.82\nBLEU_cased =  63.11\n"
  assert run_main(translation=translation, reference=reference, bleu_variant="cased") == 0
  assert capsys.readouterr().out == "BLEU_cased =  63.11\n"
  assert bleu.format_score("BLEU_cased", 100.0) == "BLEU_cased = 100.00"


def test_bad_files_are_user_errors(tmp_path):
  reference = write(tmp_path / "ref.txt", REFERENCE)
  short = write(tmp_path / "short.txt", TRANSLATION[:1])
  with pytest.raises(ConfigError, match=r"--translation=.*short.txt has 1 lines but "
                                        r"--reference=.*ref.txt has 2"):
    run_main(translation=short, reference=reference)
  with pytest.raises(ConfigError, match=r"--translation=.*missing.txt: no such file"):
    run_main(translation=str(tmp_path / "missing.txt"), reference=reference)
  with pytest.raises(ConfigError, match=r"--reference=.*missing.txt: no such file"):
    run_main(translation=short, reference=str(tmp_path / "missing.txt"))
  with pytest.raises(ConfigError, match="--reference is required"):
    run_main(translation=short, reference=None)
  with pytest.raises(ConfigError, match="--translation or --translations_dir is required"):
    run_main(reference=reference, translation=None, translations_dir=None)
  with pytest.raises(ConfigError, match="not both"):
    run_main(reference=reference, translation=short, translations_dir=str(tmp_path))
  with pytest.raises(ConfigError, match="--translations_dir=.*nowhere: no such directory"):
    list(bleu.score_translations_dir(str(tmp_path / "nowhere"), reference))
  with pytest.raises(ConfigError, match="needs a group"):
    bleu.step_files(str(tmp_path), id_pattern="-[0-9]+$")
  with pytest.raises(ConfigError, match="has no translations named with a step"):
    list(bleu.score_translations_dir(str(tmp_path), reference))


def test_translations_dir_writes_one_event_per_step(tmp_path, capsys):
  reference = write(tmp_path / "ref.txt", REFERENCE)
  translations, events = tmp_path / "translations", str(tmp_path / "events")
  translations.mkdir()
  files = {100: TRANSLATION, 20: ["x"] * 2}  # step -> lines
  for step, lines in files.items():
    path = write(translations / ("tiny_algo-%d" % step), lines)
    os.utime(path, (1000.0 + step, 1000.0 + step))
  write(translations / "tiny_algo-flags.txt", ["--model=transformer"])  # no step: ignored
  assert run_main(translations_dir=str(translations), reference=reference, event_dir=events,
                  min_steps=-1, wait_minutes=0) == 0
  printed = capsys.readouterr().out.splitlines()
  assert printed == [
      "%s: BLEU_uncased =   0.00" % (translations / "tiny_algo-20"),
      "%s: BLEU_cased =   0.00" % (translations / "tiny_algo-20"),
      "%s: BLEU_uncased =  73.82" % (translations / "tiny_algo-100"),
      "%s: BLEU_cased =  63.11" % (translations / "tiny_algo-100")]
  got = read_events(events)
  # BLEU 0 at step 0 stamped with the oldest file's time (report_zero), then one per step.
  assert [(step, wall_time) for step, wall_time, _ in got] == [(0, 1020.0), (20, 1020.0),
                                                               (100, 1100.0)]
  assert got[2][2] == pytest.approx({"BLEU_uncased": 73.82, "BLEU_cased": 63.11}, abs=0.01)
  with open(os.path.join(events, "last_evaluated_step.txt")) as f:
    assert f.read() == "100\n"

  # A rerun goes on after the last evaluated step: only the new file is scored.
  write(translations / "tiny_algo-200", REFERENCE)
  scored = list(bleu.score_translations_dir(str(translations), reference, event_dir=events,
                                            variant="uncased", tag_suffix="_beam4"))
  assert [f.step for f, _ in scored] == [200]
  assert scored[0][1] == pytest.approx({"BLEU_uncased_beam4": 100.0})
  assert [step for step, _, _ in read_events(events)] == [0, 20, 100, 200]


def test_id_pattern_and_following_new_files(tmp_path):
  reference = write(tmp_path / "ref.txt", REFERENCE)
  write(tmp_path / "decode.step5.txt", TRANSLATION)
  write(tmp_path / "decode.step40.txt", TRANSLATION[:1])  # wrong length: named in the error
  pattern = r"\.step([0-9]+)\.txt$"
  assert [f.step for f in bleu.step_files(str(tmp_path), pattern)] == [5, 40]
  with pytest.raises(ConfigError, match=r"decode.step40.txt has 1 lines"):
    list(bleu.score_translations_dir(str(tmp_path), reference, id_pattern=pattern))

  following = bleu.follow_step_files(str(tmp_path), pattern, min_steps=6, wait_minutes=0.01,
                                     poll_secs=0.05)
  assert next(following).step == 40
  write(tmp_path / "decode.step41.txt", TRANSLATION)  # appears while following
  write(tmp_path / "decode.step7.txt", TRANSLATION)  # older than what was seen: skipped
  assert next(following).step == 41
  assert list(following) == []  # nothing new within wait_minutes


def test_script_error_is_one_line_and_exit_2(tmp_path, script_env, repo_root):
  reference = write(tmp_path / "ref.txt", REFERENCE)
  short = write(tmp_path / "short.txt", TRANSLATION[:1])
  proc = subprocess.run(
      [sys.executable, os.path.join(repo_root, "scripts", "t2t_bleu.py"),
       "--translation=" + short, "--reference=" + reference],
      env=script_env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr
  assert proc.stdout == ""
  assert proc.stderr.splitlines() == [
      "t2t-bleu: error: --translation=%s has 1 lines but --reference=%s has 2: line i of the "
      "translation must translate line i of the reference." % (short, reference)]
