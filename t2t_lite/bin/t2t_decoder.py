"""t2t-decoder: decode with a trained model (cached greedy or beam search).

    t2t-decoder --problem=algorithmic_reverse_binary40 --model=transformer \\
        --hparams_set=transformer_tiny --data_dir=~/t2t/data --output_dir=~/t2t/train/rev \\
        --decode_from_file=inputs.txt --decode_to_file=outputs.txt \\
        --decode_hparams="beam_size=4,alpha=0.6"

One input per line, encoded with the problem's input encoder (plus EOS); outputs in the same
order, one per line (all beams tab-separated with return_beams=true). Without
--decode_to_file they go to FILE.MODEL.HPARAMS_SET.PROBLEM.beamK.alphaA.decodes.
--decode_interactive reads stdin line by line and prints each decode. With neither, the dev
split of --data_dir is decoded (num_samples examples) and its exact-match and per-token
accuracies are printed.

The model hparams are read from OUTPUT_DIR/hparams.json (what the trainer saved), so they
match the checkpoint; --hparams / --hp_NAME override them. Only the model is restored from
the newest checkpoint.

--decode_hparams (defaults): beam_size=4 (1: greedy), alpha=0.6, extra_length=50 (an input
of n ids decodes at most n + 50 positions), return_beams=false, write_beam_scores=false,
batch_size=32, num_samples=1000 (-1: the whole dev split), max_input_size=-1, xla=false,
shards=0 (with xla on CPU: split a batch over the cores; 1: never), log_results=true.

--export_saved_model writes a SavedModel to --export_dir (default OUTPUT_DIR/export_decoder)
whose serving_default signature takes raw input strings (tf.string [batch], key "inputs")
and returns the decoded strings ("outputs", tf.string [batch]) and their "scores" (plus
"beams" and "beam_scores" [batch, beam_size] with return_beams); the decode hparams are
fixed at export. It loads with tf.saved_model.load alone, without t2t_lite.
"""
import os
import sys

from absl import flags

from t2t_lite.bin import common

if "export_dir" not in flags.FLAGS:
  flags.DEFINE_string("export_dir", None,
                      "t2t-decoder --export_saved_model: where to write the string-to-string "
                      "SavedModel (default OUTPUT_DIR/export_decoder).")


def main(argv):
  from absl import logging

  from t2t_lite import constants
  from t2t_lite import output_dir as output_dir_lib
  from t2t_lite import registry

  FLAGS = flags.FLAGS  # pylint: disable=invalid-name
  if common.start(argv):
    return 0

  from t2t_lite import decoding  # pylint: disable=g-import-not-at-top
  common.require_flags("problem", "model", "output_dir")
  decode_hp = decoding.decode_hparams(FLAGS.decode_hparams)
  decode_from_file = os.path.expanduser(FLAGS.decode_from_file or "") or None
  lines = decoding.read_decode_file(decode_from_file) if decode_from_file else None
  dev_mode = not (decode_from_file or FLAGS.decode_interactive or FLAGS.export_saved_model)
  if dev_mode:
    common.require_flags("data_dir")
  output_dir = os.path.expanduser(FLAGS.output_dir)
  data_dir = os.path.expanduser(FLAGS.data_dir) if FLAGS.data_dir else None
  registry.problem(FLAGS.problem)  # an unknown problem or model fails here, before any work
  registry.model(FLAGS.model)
  output_dir_lib.latest_checkpoint(output_dir)
  hparams = output_dir_lib.load_hparams(output_dir, FLAGS.hparams_set, FLAGS.hparams)
  hparams_set = hparams.get("hparams_set") or FLAGS.hparams_set
  from t2t_lite.task import Task  # pylint: disable=g-import-not-at-top
  task = Task(FLAGS.problem, FLAGS.model, hparams, data_dir)
  if lines is not None:  # a line the encoder rejects fails here, before the model is built
    decoding.encode_lines(task, lines, decode_hp.max_input_size)
  model, checkpoint = decoding.restore_model(task, output_dir)
  decoder = decoding.Decoder(model, decode_hp)

  if FLAGS.export_saved_model:
    export_dir = os.path.expanduser(FLAGS.export_dir or
                                    os.path.join(output_dir, constants.DECODER_EXPORT_DIR))
    decoding.export_decoder(task, model, decode_hp, export_dir)
    print("Exported a string-to-string decoder SavedModel to %s" % export_dir, flush=True)

  if lines is not None:
    decode_to_file = os.path.expanduser(FLAGS.decode_to_file or "") or (
        decoding.default_decode_to_file(decode_from_file, FLAGS.problem, FLAGS.model,
                                        hparams_set, decode_hp))
    count = decoding.decode_from_file(decoder, task, decode_from_file, decode_to_file)
    print("Decoded %d lines of %s into %s" % (count, decode_from_file, decode_to_file))
  elif FLAGS.decode_interactive:
    logging.info("Reading inputs from stdin, one per line; end with Ctrl-D.")
    decoding.decode_interactive(decoder, task, sys.stdin, sys.stdout)
  elif dev_mode:
    decode_to_file = os.path.expanduser(FLAGS.decode_to_file) if FLAGS.decode_to_file else None
    metrics = decoding.decode_dataset(decoder, task, log=decode_hp.log_results,
                                      decode_to_file=decode_to_file)
    print(decoding.format_metrics(metrics, FLAGS.problem, checkpoint))
  return 0
  return 0


def console_main():
  common.run_main(main, "t2t-decoder", __doc__)


if __name__ == "__main__":
  console_main()
