"""Serving the Translate recipe's model (README's "Translate"): benchmarks/serve.py's servers
and targets on that run's strings export, the inputs its held-out test sentences.

    t2t-decoder --problem=text2text_tmpdir --model=transformer --data_dir=~/t2t_data \\
      --output_dir=~/t2t_train/ende --export_saved_model \\
      --decode_hparams="beam_size=4,alpha=0.6"        # needs tensorflow-text
    python -m benchmarks.run_all serve_translate \\
      --export_dir=~/t2t_train/ende/export_decoder --inputs_file=~/ende/inputs.test.txt

The run takes README's recipe or `python -m benchmarks.translate` (about 20 minutes of
training); without --export_dir and --inputs_file the row says the benchmark was skipped.
Other arguments are benchmarks/serve.py's.
"""
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
  sys.path.insert(0, _ROOT)

from benchmarks import common  # noqa: E402
from benchmarks import serve  # noqa: E402

LABEL = "serve_translate"


def parse_args(args):
  return serve.parse_args(args)


def run(export_dir=None, inputs_file=None, **kwargs):
  if not export_dir or not inputs_file:
    return [common.row("%s: t2t-serve / per-request throughput (tuned), 32 clients" % LABEL,
                       0.0, "x", ">= %g" % serve.TARGET_SPEEDUP, False,
                       "skipped: give --export_dir (the Translate run's strings export) and "
                       "--inputs_file (its test sentences)")]
  return serve.run(export_dir=export_dir, inputs_file=inputs_file, label=LABEL, **kwargs)


def main(argv):
  print(common.machine_description())
  common.print_rows(run(**parse_args(argv[1:])))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
