"""t2t-bleu: the BLEU score of translations (sacreBLEU), cased and uncased.

    t2t-bleu --translation=decodes.de --reference=newstest2014.de
    BLEU_uncased =  27.93
    BLEU_cased =  27.31

    t2t-bleu --translations_dir=translations --reference=newstest2014.de --event_dir=events

One translation file: its BLEU against the reference, printed as tensor2tensor's t2t-bleu
printed it. A directory of translations, one file per checkpoint named NAME-STEP (as
t2t-translate-all writes them): each file's BLEU in step order, and with --event_dir one
TensorBoard event per step (tags BLEU_uncased and BLEU_cased) plus
EVENT_DIR/last_evaluated_step.txt, so a rerun scores only the new files. The scores are
sacreBLEU's corpus BLEU (13a tokenization), comparable with published results.

Flags:

    --translation      one file of translations, line i translating line i of --reference
    --reference        the reference translation; required
    --translations_dir a directory of translations, one file per checkpoint step
    --id_pattern       a regular expression whose first group is the step in a file's name
                       (default "-([0-9]+)$": NAME-STEP; new, tensor2tensor had none)
    --event_dir        write TensorBoard events here (directory mode)
    --bleu_variant     both (default), cased or uncased
    --tag_suffix       appended to the tags, e.g. _beam4 (default none)
    --min_steps        leave out files with fewer steps; -1 (default): after the step in
                       EVENT_DIR/last_evaluated_step.txt, else none
    --wait_minutes     keep waiting up to this many minutes for each new file (default 0)
    --report_zero      also write BLEU 0 at step 0, stamped with the oldest file's time
                       (default: when starting from step 0)
    --bleu_tokenize    sacreBLEU's tokenizer: 13a (default), intl, zh, ja-mecab, char, none
"""
import os

from absl import flags

from t2t_lite.bin import common
from t2t_lite.bin import t2t_avg_all  # noqa: F401  (defines --min_steps and --wait_minutes)

PROG = "t2t-bleu"


def _define_flags():
  from t2t_lite import flags as t2t_flags  # pylint: disable=g-import-not-at-top
  define = t2t_flags.define_once
  define(flags.DEFINE_string, "translation", None,
         "t2t-bleu: the file of translations to score.")
  define(flags.DEFINE_string, "reference", None, "t2t-bleu: the reference translation file.")
  define(flags.DEFINE_string, "translations_dir", None,
         "t2t-bleu: a directory of translation files, one per checkpoint (NAME-STEP).")
  define(flags.DEFINE_string, "id_pattern", r"-([0-9]+)$",
         "t2t-bleu: a regular expression whose first group is the step in a file's name.")
  define(flags.DEFINE_string, "event_dir", None,
         "t2t-bleu: write a TensorBoard event per step of --translations_dir here.")
  define(flags.DEFINE_enum, "bleu_variant", "both", ["both", "cased", "uncased"],
         "t2t-bleu: which BLEU to compute.")
  define(flags.DEFINE_string, "tag_suffix", "", "t2t-bleu: appended to the BLEU_* tags.")
  define(flags.DEFINE_boolean, "report_zero", None,
         "t2t-bleu: also write BLEU 0 at step 0 (default: when starting from step 0).")
  define(flags.DEFINE_string, "bleu_tokenize", "13a",
         "t2t-bleu: sacreBLEU's tokenizer (13a, intl, zh, ja-mecab, char, none).")


_define_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv  # unused
  from t2t_lite.decoding import bleu  # pylint: disable=g-import-not-at-top
  from t2t_lite.errors import ConfigError  # pylint: disable=g-import-not-at-top

  common.require_flags("reference")
  reference = os.path.expanduser(FLAGS.reference)
  if FLAGS.translation and FLAGS.translations_dir:
    raise ConfigError("pass --translation (one file) or --translations_dir, not both.")
  if FLAGS.translation:
    scores = bleu.file_bleu(os.path.expanduser(FLAGS.translation), reference,
                            FLAGS.bleu_variant, FLAGS.tag_suffix, FLAGS.bleu_tokenize)
    for tag, score in scores.items():
      print(bleu.format_score(tag, score))
    return 0
  if not FLAGS.translations_dir:
    raise ConfigError("--translation or --translations_dir is required (see --help).")
  for stepfile, scores in bleu.score_translations_dir(
      os.path.expanduser(FLAGS.translations_dir), reference,
      event_dir=os.path.expanduser(FLAGS.event_dir) if FLAGS.event_dir else None,
      variant=FLAGS.bleu_variant, tag_suffix=FLAGS.tag_suffix, min_steps=FLAGS.min_steps,
      wait_minutes=FLAGS.wait_minutes, report_zero=FLAGS.report_zero,
      id_pattern=FLAGS.id_pattern, tokenize=FLAGS.bleu_tokenize):
    for tag, score in scores.items():
      print("%s: %s" % (stepfile.path, bleu.format_score(tag, score)), flush=True)
  return 0


def console_main():
  common.run_main(main, PROG, __doc__)


if __name__ == "__main__":
  console_main()
