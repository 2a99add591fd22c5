"""Vocabulary build time: the subword builder against SentencePiece, at the same size.

    python -m benchmarks.gettext_corpus /tmp/ende      # once: English->German sentence pairs
    python -m benchmarks.vocab [/tmp/ende] [--size=8192]

Both build a vocabulary of `--size` ids (8192, translate_ende_wmt8k's) from the same lines:
every line of inputs.train.txt and targets.train.txt (the source and target sides, as
t2t-datagen builds a shared vocabulary). `SubwordTextEncoder.build_from_corpus` is
tensor2tensor's scheme in pure Python (TFDS's builder: a binary search over the minimum
subword count, four passes over the corpus per try); `SentencePieceEncoder.build_from_corpus`
trains a BPE model in C++ on the machine's cores. Target: SentencePiece at least 10x
faster (wall time). Reported beside it: the CPU seconds of each (SentencePiece's include its
threads), the sizes reached, and the ids per sentence each gives the held-out
inputs/targets.eval.txt (how finely each cuts text it has not seen).

Without the corpus folder (no gettext catalogs on the machine), it is written into a
temporary folder first; with no catalogs at all, the rows say the benchmark was skipped.
"""
import os
import shutil
import sys
import tempfile

if __package__ in (None, ""):  # `python benchmarks/vocab.py`
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

CORPUS_DIR = "/tmp/ende"
SIZE = 8192
SPEEDUP_TARGET = 10.0


def _read(path):
  with open(path, encoding="utf-8") as f:
    return [line.strip() for line in f]


def corpus_lines(corpus_dir):
  """(train lines of both sides, eval lines of both sides) of a text2text_tmpdir folder."""
  train = _read(os.path.join(corpus_dir, "inputs.train.txt")) + _read(
      os.path.join(corpus_dir, "targets.train.txt"))
  held_out = []
  for name in ("inputs.eval.txt", "targets.eval.txt"):
    path = os.path.join(corpus_dir, name)
    if os.path.exists(path):
      held_out += _read(path)
  return train, held_out


def measure(train, held_out, size=SIZE):
  """Builds both vocabularies from `train`; returns a dict of figures."""
  from t2t_lite.data import text_encoder  # pylint: disable=g-import-not-at-top
  from t2t_lite.data import sentencepiece_encoder  # pylint: disable=g-import-not-at-top
  SentencePieceEncoder = sentencepiece_encoder.SentencePieceEncoder  # pylint: disable=invalid-name
  sp_wall, sp_cpu, sp = common.timed(
      lambda: SentencePieceEncoder.build_from_corpus(train, size))
  sub_wall, sub_cpu, sub = common.timed(
      lambda: text_encoder.SubwordTextEncoder.build_from_corpus(train, size))
  sample = held_out[:5000]

  def ids_per_line(enc):
    return sum(len(enc.encode(line)) for line in sample) / max(1, len(sample))

  return {"lines": len(train), "chars": sum(len(t) for t in train),
          "subword_seconds": sub_wall, "subword_cpu_seconds": sub_cpu,
          "subword_vocab_size": sub.vocab_size, "subword_ids_per_line": ids_per_line(sub),
          "sentencepiece_seconds": sp_wall, "sentencepiece_cpu_seconds": sp_cpu,
          "sentencepiece_vocab_size": sp.vocab_size,
          "sentencepiece_ids_per_line": ids_per_line(sp), "held_out_lines": len(sample),
          "speedup": sub_wall / max(sp_wall, 1e-9),
          "cpu_speedup": sub_cpu / max(sp_cpu, 1e-9)}


def _corpus_dir():
  """(folder, temporary?) of the gettext corpus, writing it when it is missing; None if no
  catalogs."""
  if os.path.exists(os.path.join(CORPUS_DIR, "inputs.train.txt")):
    return CORPUS_DIR, False
  from benchmarks import gettext_corpus  # pylint: disable=g-import-not-at-top
  splits = gettext_corpus.corpus()
  if not splits or not splits["train"]:
    return None, False
  folder = tempfile.mkdtemp(prefix="t2t_bench_vocab_")
  gettext_corpus.write_text2text_files(splits, folder)
  return folder, True


def run(corpus_dir=None, size=SIZE):
  """The rows for BENCHMARKS.md."""
  own = False
  if corpus_dir is None:
    corpus_dir, own = _corpus_dir()
  if corpus_dir is None:
    return [common.row("vocabulary build, subwords / sentencepiece", 0.0, "x",
                       ">= %gx" % SPEEDUP_TARGET, False,
                       "skipped: no corpus (no gettext catalogs on this machine)")]
  try:
    train, held_out = corpus_lines(corpus_dir)
    m = measure(train, held_out, size)
  finally:
    if own:
      shutil.rmtree(corpus_dir, ignore_errors=True)
  corpus = "%d lines, %.1f M chars (both sides of %s)" % (m["lines"], m["chars"] / 1e6,
                                                          os.path.join(corpus_dir, "*.train.txt"))
  return [
      common.row(
          "vocabulary build at %d ids: subword builder time / sentencepiece time" % size,
          m["speedup"], "x", ">= %gx" % SPEEDUP_TARGET, m["speedup"] >= SPEEDUP_TARGET,
          "subwords %.1f s wall (%.1f s CPU), sentencepiece %.2f s wall (%.2f s CPU, its "
          "threads included; %.1fx in CPU time); %s" % (
              m["subword_seconds"], m["subword_cpu_seconds"], m["sentencepiece_seconds"],
              m["sentencepiece_cpu_seconds"], m["cpu_speedup"], corpus)),
      common.row(
          "ids per held-out sentence, sentencepiece / subwords",
          m["sentencepiece_ids_per_line"] / max(m["subword_ids_per_line"], 1e-9), "ratio",
          "reported", True,
          "%.1f sentencepiece ids (vocab %d) vs %.1f subword ids (vocab %d) per line of %d "
          "held-out lines" % (m["sentencepiece_ids_per_line"], m["sentencepiece_vocab_size"],
                              m["subword_ids_per_line"], m["subword_vocab_size"],
                              m["held_out_lines"])),
  ]


def main(argv):
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("corpus_dir", nargs="?", default=None,
                      help="a text2text_tmpdir folder (default: %s, written when missing)"
                      % CORPUS_DIR)
  parser.add_argument("--size", type=int, default=SIZE, help="vocabulary ids")
  args = parser.parse_args(argv[1:])
  common.print_rows(run(args.corpus_dir, args.size))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
