"""What t2t-decoder does, as functions of a `Task`: restore a trained model and decode files,
stdin or the dev split.

    hparams = output_dir.load_hparams(run_dir, "transformer_tiny")    # RUN_DIR/hparams.json
    task = Task(problem, "transformer", hparams, data_dir)
    model, path = restore_model(task, run_dir)
    decoder = Decoder(model, decode_hparams("beam_size=1"))
    decode_from_file(decoder, task, "inputs.txt", "outputs.txt")
    metrics = decode_dataset(decoder, task, num_samples=1000)

Text goes one way: `encode_lines` (the problem's input encoder, plus EOS) -> `Decoder` ->
`format_decodes` (the target encoder; beams tab-separated with return_beams).
`exact_match_rate(output_dir, data_dir, problem, model, hparams_set, num_examples)` is the
acceptance check of a trained run: the share of dev examples decoded exactly right.
"""
import os
import sys

from absl import logging

from t2t_lite import output_dir as output_dir_lib
from t2t_lite.constants import EOS_ID, ModeKeys
from t2t_lite.decoding import decoder as decoder_lib
from t2t_lite.errors import ConfigError, DataNotFoundError
from t2t_lite.task import Task


def restore_model(task, output_dir, checkpoint_path=None):
  """The task's model restored from output_dir's newest (or the given) checkpoint, checked
  to be decodable; returns (model, checkpoint path).

  Raises:
    ConfigError: class-label targets (nothing to decode), or a checkpoint that does not fit.
    CheckpointNotFoundError: output_dir has no checkpoint.
  """
  if not task.sequence_targets:
    raise ConfigError("problem %s has class-label targets; t2t-decoder decodes sequences "
                      "(evaluate classifiers with t2t-trainer --schedule=evaluate)." %
                      task.problem.name)
  model, path = task.restore_for_inference(output_dir, checkpoint_path)
  decoder_lib.check_decodable(model)
  logging.info("Restored the model from %s", path)
  return model, path


def read_decode_file(path):
  """The lines of a decode file, without line ends.

  Raises:
    ConfigError: the file is missing or has no lines.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not tf.io.gfile.exists(path):
    raise ConfigError("--decode_from_file=%s: no such file." % path)
  with tf.io.gfile.GFile(path, "r") as f:
    lines = [line.rstrip("\r\n") for line in f]
  while lines and not lines[-1].strip():
    lines.pop()
  if not lines:
    raise ConfigError("--decode_from_file=%s is empty: write one input per line." % path)
  return lines


def default_decode_to_file(decode_from_file, problem_name, model_name, hparams_set,
                           decode_hp):
  """tensor2tensor's name: FILE.MODEL.HPARAMS_SET.PROBLEM.beamK.alphaA.decodes."""
  return "%s.%s.%s.%s.beam%d.alpha%s.decodes" % (
      decode_from_file, model_name, hparams_set, problem_name, decode_hp.beam_size,
      decode_hp.alpha)


def _source_encoder(task, encoders):
  # A decoder-only problem's prompts are encoded with its targets' encoder.
  return encoders["inputs"] if task.problem.has_inputs else encoders["targets"]


def encode_lines(task, lines, max_input_size=-1):
  """Input lines -> id lists, as the decoder reads them.

  Lines are encoded with the problem's "inputs" encoder and get EOS appended; for a
  decoder-only problem they are prompts, encoded with "targets" and without EOS. With
  `max_input_size` > 0 each is cut to that many ids first.

  Raises:
    ConfigError: a line the encoder rejects (the message gives its number).
  """
  encoder = _source_encoder(task, task.problem.feature_encoders(task.data_dir))
  id_lists = []
  for number, line in enumerate(lines, 1):
    try:
      ids = list(encoder.encode(line))
    except ValueError as e:
      raise ConfigError("line %d (%r) cannot be encoded: %s" % (number, line[:60], e)) from None
    if max_input_size > 0:
      ids = ids[:max_input_size]
    id_lists.append(ids + [EOS_ID] if task.problem.has_inputs else ids)
  return id_lists


def format_decodes(decoder, results, target_encoder):
  """Each (beams, scores) -> one output line (beams tab-separated with return_beams)."""
  hp = decoder.hparams
  lines = []
  for beams, scores in results:
    if not hp.return_beams:
      lines.append(target_encoder.decode(beams[0]))
      continue
    parts = []
    for ids, score in zip(beams, scores):
      text = target_encoder.decode(ids)
      parts.append("%s\t%.6g" % (text, score) if hp.write_beam_scores else text)
    lines.append("\t".join(parts))
  return lines


def decode_lines(decoder, task, lines):
  """Input lines -> output lines (see `encode_lines` and `format_decodes`)."""
  results = decoder.decode_with_scores(
      encode_lines(task, lines, decoder.hparams.max_input_size))
  return format_decodes(decoder, results, task.problem.feature_encoders(task.data_dir)["targets"])


def decode_from_file(decoder, task, decode_from_file, decode_to_file):
  """Decodes each line of `decode_from_file` into the same line of `decode_to_file` (written
  atomically). Returns the number of lines decoded."""
  outputs = decode_lines(decoder, task, read_decode_file(decode_from_file))
  output_dir_lib.write_lines_atomically(decode_to_file, outputs)
  return len(outputs)


def decode_interactive(decoder, task, stdin=None, stdout=None):
  """Reads lines from stdin and prints each one's decode, until end of input."""
  stdin = stdin or sys.stdin
  stdout = stdout or sys.stdout
  prompt = stdin.isatty() if hasattr(stdin, "isatty") else False
  count = 0
  while True:
    if prompt:
      sys.stderr.write("> ")
      sys.stderr.flush()
    line = stdin.readline()
    if not line:
      break
    try:
      output = decode_lines(decoder, task, [line.rstrip("\r\n")])[0]
    except ConfigError as e:
      output = "error: %s" % e
    stdout.write(output + "\n")
    stdout.flush()
    count += 1
  return count


def dev_examples(task, num_samples):
  """Up to `num_samples` (-1: all) (source ids, target ids) of the dev split, in order.

  Sources are the inputs (with EOS); for a decoder-only problem the first half of each
  target is the prompt and the rest is the target. Targets are without EOS and padding.
  """
  problem = task.problem
  ds = problem.examples(ModeKeys.EVAL, task.data_dir, task.hparams)
  if num_samples is not None and num_samples >= 0:
    ds = ds.take(num_samples)
  pairs = []
  with problem.reading_errors(task.data_dir):
    for example in ds.as_numpy_iterator():
      targets = decoder_lib.strip_ids(example["targets"].reshape(-1))
      if problem.has_inputs:
        pairs.append((example["inputs"].reshape(-1).tolist(), targets))
      else:
        half = len(targets) // 2
        pairs.append((targets[:half], targets[half:]))
  if not pairs:
    raise DataNotFoundError("the dev split of %s in %s has no examples to decode." %
                            (problem.name, task.data_dir))
  return pairs


def sequence_metrics(decodes, targets):
  """{"accuracy_per_sequence": exact-match share, "accuracy": per-token accuracy, ...}.

  Per-token accuracy compares position by position over the target tokens and its EOS (a
  decode that stops early or runs on is wrong at those positions), as the trainer's
  per-token accuracy does.
  """
  exact = 0
  correct = total = 0
  for decode, target in zip(decodes, targets):
    exact += int(list(decode) == list(target))
    target_eos = list(target) + [EOS_ID]
    decode_eos = list(decode) + [EOS_ID]
    correct += sum(int(i < len(decode_eos) and decode_eos[i] == t)
                   for i, t in enumerate(target_eos))
    total += len(target_eos)
  n = max(1, len(targets))
  return {"accuracy_per_sequence": exact / n, "accuracy": correct / max(1, total),
          "num_examples": len(targets)}


def decode_dataset(decoder, task, num_samples=None, log=True, decode_to_file=None):
  """Decodes dev examples and measures them against their targets.

  Args:
    decoder: a Decoder.
    task: the Task (problem, data_dir, hparams for the problem's preprocessing).
    num_samples: examples to decode (-1: all; default the decode hparams' num_samples).
    log: print a few examples (input, decode, target) on stdout.
    decode_to_file: also write the decodes there, one a line (atomically).

  Returns:
    `sequence_metrics` of the best decodes.
  """
  if num_samples is None:
    num_samples = decoder.hparams.num_samples
  pairs = dev_examples(task, num_samples)
  results = decoder.decode_with_scores([source for source, _ in pairs])
  best = [beams[0] for beams, _ in results]
  metrics = sequence_metrics(best, [target for _, target in pairs])
  encoders = task.problem.feature_encoders(task.data_dir)
  if log:
    source_encoder = _source_encoder(task, encoders)
    for (source, target), decode in list(zip(pairs, best))[:5]:
      print("  input:  %s\n  decode: %s\n  target: %s" % (
          source_encoder.decode(source), encoders["targets"].decode(decode),
          encoders["targets"].decode(target)))
  if decode_to_file:
    output_dir_lib.write_lines_atomically(
        decode_to_file, format_decodes(decoder, results, encoders["targets"]))
  return metrics


def dev_bleu(decoder, task, num_samples):
  """sacreBLEU (0-100, cased) of `num_samples` decoded dev examples against their targets,
  both detokenized with the problem's target encoder."""
  from t2t_lite.decoding import bleu  # pylint: disable=g-import-not-at-top
  pairs = dev_examples(task, num_samples)
  results = decoder.decode_with_scores([source for source, _ in pairs])
  target = task.problem.feature_encoders(task.data_dir)["targets"]
  return bleu.bleu_score([target.decode(beams[0]) for beams, _ in results],
                         [target.decode(ids) for _, ids in pairs])


def exact_match_rate(output_dir, data_dir, problem, model, hparams_set, num_examples=1000,
                     decode_hparams_overrides="beam_size=1"):
  """The share of held-out (dev) examples a trained run decodes exactly right.

  The problem and model names must be registered (import `problems` and `t2t_lite.models`,
  or call `t2t_lite.bin.common.import_registrations(None)`, first).

  Args:
    output_dir: the trained run (checkpoints, hparams.json).
    data_dir: the problem's data.
    problem: a registered problem name (or a Problem).
    model: the registered model name.
    hparams_set: the hparams set (used when output_dir has no hparams.json).
    num_examples: dev examples to decode (-1: all).
    decode_hparams_overrides: a `--decode_hparams` string (default greedy search).

  Returns:
    A float in [0, 1].
  """
  task = Task(problem, model, output_dir_lib.load_hparams(output_dir, hparams_set), data_dir)
  restored, _ = restore_model(task, output_dir)
  decoder = decoder_lib.Decoder(restored, decoder_lib.decode_hparams(decode_hparams_overrides))
  metrics = decode_dataset(decoder, task, num_samples=num_examples, log=False)
  return metrics["accuracy_per_sequence"]


def format_metrics(metrics, problem_name, checkpoint_path):
  return "\n".join([
      "Decoded %d dev examples of %s with %s:" % (
          metrics["num_examples"], problem_name, os.path.basename(checkpoint_path)),
      "  %-26s %.4f" % ("accuracy (per sequence)", metrics["accuracy_per_sequence"]),
      "  %-26s %.4f" % ("accuracy (per token)", metrics["accuracy"]),
  ])

