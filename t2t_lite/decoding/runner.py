"""What t2t-decoder does, as functions: restore a trained model and decode files, stdin or
the dev split.

    hparams = load_hparams(output_dir, "transformer_tiny")       # OUTPUT_DIR/hparams.json
    model, path = restore_model(problem, "transformer", hparams, output_dir, data_dir)
    decoder = Decoder(model, decode_hparams("beam_size=1"))
    decode_from_file(decoder, problem, data_dir, "inputs.txt", "outputs.txt")
    metrics = decode_dataset(decoder, problem, data_dir, hparams, num_samples=1000)

`exact_match_rate(output_dir, data_dir, problem, model, hparams_set, num_examples)` is the
acceptance check of a trained run: the share of dev examples decoded exactly right.
"""
import os
import sys

import keras
import tensorflow as tf
from absl import logging

from t2t_lite import registry
from t2t_lite.data.problem import ModeKeys
from t2t_lite.decoding import decoder as decoder_lib
from t2t_lite.errors import CheckpointNotFoundError, ConfigError, DataNotFoundError
from t2t_lite.hparams import HParams

HPARAMS_FILENAME = "hparams.json"


def _as_problem(problem):
  return registry.problem(problem) if isinstance(problem, str) else problem


def load_hparams(output_dir, hparams_set=None, overrides=""):
  """The model hparams of a trained run, with `overrides` (an `--hparams` string) applied.

  They come from OUTPUT_DIR/hparams.json (what the trainer saved, so they match the
  checkpoints) when it exists, else from the registered `hparams_set`.

  Raises:
    ConfigError: neither hparams.json nor hparams_set, or an unreadable hparams.json.
    UnknownNameError / HParamsError: an unknown set or a bad overrides string.
  """
  path = os.path.join(output_dir, HPARAMS_FILENAME) if output_dir else None
  if path and tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path, "r") as f:
      text = f.read()
    try:
      hparams = HParams.from_json(text)
    except ValueError as e:
      raise ConfigError("%s is not a valid hparams file (%s)." % (path, e)) from None
    saved_set = hparams.get("hparams_set")
    if hparams_set and saved_set and saved_set != hparams_set:
      logging.warning("--hparams_set=%s, but %s was trained with %s: using the saved "
                      "hparams, which match its checkpoints.", hparams_set, output_dir,
                      saved_set)
  elif hparams_set:
    hparams = registry.hparams(hparams_set)
  else:
    raise ConfigError("--hparams_set is required: %s has no %s to read the hparams from." %
                      (output_dir, HPARAMS_FILENAME))
  hparams.parse(overrides or "")
  return hparams


def latest_checkpoint(output_dir):
  """The newest checkpoint's path in output_dir.

  Raises:
    CheckpointNotFoundError: there is none.
  """
  path = tf.train.latest_checkpoint(output_dir) if output_dir else None
  if not path:
    raise CheckpointNotFoundError(
        "no checkpoint in --output_dir=%s: train a model there first (t2t-trainer ... "
        "--output_dir=%s)." % (output_dir, output_dir))
  return path


def build_model(problem, model_name, hparams, data_dir=None):
  """The model, built (its weights created) for decoding; not restored."""
  problem = _as_problem(problem)
  problem_hparams = problem.get_hparams(hparams, data_dir=data_dir)
  if problem_hparams.modality.get("targets") == "class_label":
    raise ConfigError("problem %s has class-label targets; t2t-decoder decodes sequences "
                      "(evaluate classifiers with t2t-trainer --schedule=evaluate)." %
                      problem.name)
  policy = hparams.get("mixed_precision", "") or None
  previous = keras.config.dtype_policy()
  if policy:
    keras.config.set_dtype_policy(policy)
  try:
    model = registry.model(model_name)(hparams, problem_hparams)
    dummy = {"targets": tf.ones([1, 4], tf.int32)}
    if problem_hparams.has_inputs:
      dummy["inputs"] = tf.ones([1, 4], tf.int32)
    model(dummy, training=False)
  finally:
    keras.config.set_dtype_policy(previous)
  decoder_lib.check_decodable(model)
  return model


def variables_outside_checkpoint(checkpoint, model):
  """The paths of the model's weights that `checkpoint` (which holds the model) cannot reach.

  Keras 3 layers kept only in a list attribute are tracked by Keras (they are in
  `model.weights`) but not by tf.train.Checkpoint, so a checkpoint silently lacks them.
  """
  view = tf.train.TrackableView(checkpoint)
  reachable = {id(obj) for obj in view.descendants()}
  return [w.path for w in model.weights if id(w) not in reachable]


def restore_model(problem, model_name, hparams, output_dir, data_dir=None):
  """Builds the model and restores its weights (only the model) from the newest checkpoint.

  Returns:
    (model, checkpoint path).

  Raises:
    CheckpointNotFoundError: output_dir has no checkpoint.
    ConfigError: the checkpoint does not fit the model built from these hparams.
  """
  path = latest_checkpoint(output_dir)
  model = build_model(problem, model_name, hparams, data_dir)
  checkpoint = tf.train.Checkpoint(model=model)
  unsaved = variables_outside_checkpoint(checkpoint, model)
  if unsaved:
    # A bug of the model, not of the user: its checkpoints cannot hold these variables, so
    # "restoring" would leave them at their random initial values.
    raise RuntimeError(
        "model %s keeps %d of its %d variables where tf.train.Checkpoint cannot see them "
        "(e.g. %s), so its checkpoints do not hold them and a restored model would decode "
        "with random weights. Keras 3 does not checkpoint layers held only in a Python list "
        "attribute: give each such layer its own attribute as well." %
        (model_name, len(unsaved), len(model.weights), ", ".join(unsaved[:3])))
  try:
    status = checkpoint.restore(path).expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as e:
    raise ConfigError(
        "the checkpoint %s does not fit model %s with these hparams (%s). Decode with the "
        "model, problem and hparams it was trained with." %
        (path, model_name, str(e).splitlines()[0][:300])) from None
  logging.info("Restored the model from %s", path)
  return model, path


def read_decode_file(path):
  """The lines of a decode file, without line ends.

  Raises:
    ConfigError: the file is missing or has no lines.
  """
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


def encode_lines(problem, data_dir, lines, max_input_size=-1):
  """Input lines -> id lists, as the decoder reads them.

  Lines are encoded with the problem's "inputs" encoder and get EOS appended; for a
  decoder-only problem they are prompts, encoded with "targets" and without EOS. With
  `max_input_size` > 0 each is cut to that many ids first.

  Raises:
    ConfigError: a line the encoder rejects (the message gives its number).
  """
  problem = _as_problem(problem)
  encoders = problem.feature_encoders(data_dir)
  encoder = encoders["inputs"] if problem.has_inputs else encoders["targets"]
  id_lists = []
  for number, line in enumerate(lines, 1):
    try:
      ids = list(encoder.encode(line))
    except ValueError as e:
      raise ConfigError("line %d (%r) cannot be encoded: %s" % (number, line[:60], e)) from None
    if max_input_size > 0:
      ids = ids[:max_input_size]
    id_lists.append(ids + [decoder_lib.EOS_ID] if problem.has_inputs else ids)
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


def decode_from_file(decoder, problem, data_dir, decode_from_file, decode_to_file):
  """Decodes each line of `decode_from_file` into the same line of `decode_to_file`.

  Returns:
    The number of lines decoded.
  """
  problem = _as_problem(problem)
  lines = read_decode_file(decode_from_file)
  encoders = problem.feature_encoders(data_dir)
  results = decoder.decode_with_scores(
      encode_lines(problem, data_dir, lines, decoder.hparams.max_input_size))
  outputs = format_decodes(decoder, results, encoders["targets"])
  parent = os.path.dirname(decode_to_file)
  if parent:
    tf.io.gfile.makedirs(parent)
  tmp = "%s.tmp-%d" % (decode_to_file, os.getpid())
  with tf.io.gfile.GFile(tmp, "w") as f:
    for line in outputs:
      f.write(line + "\n")
  tf.io.gfile.rename(tmp, decode_to_file, overwrite=True)
  return len(outputs)


def decode_interactive(decoder, problem, data_dir, stdin=None, stdout=None):
  """Reads lines from stdin and prints each one's decode, until end of input."""
  problem = _as_problem(problem)
  stdin = stdin or sys.stdin
  stdout = stdout or sys.stdout
  encoders = problem.feature_encoders(data_dir)
  prompt = stdin.isatty() if hasattr(stdin, "isatty") else False
  count = 0
  while True:
    if prompt:
      sys.stderr.write("> ")
      sys.stderr.flush()
    line = stdin.readline()
    if not line:
      break
    line = line.rstrip("\r\n")
    try:
      ids = encode_lines(problem, data_dir, [line], decoder.hparams.max_input_size)
    except ConfigError as e:
      stdout.write("error: %s\n" % e)
      stdout.flush()
      continue
    results = decoder.decode_with_scores(ids)
    stdout.write(format_decodes(decoder, results, encoders["targets"])[0] + "\n")
    stdout.flush()
    count += 1
  return count


def dev_examples(problem, data_dir, hparams, num_samples):
  """Up to `num_samples` (-1: all) (source ids, target ids) of the dev split, in order.

  Sources are the inputs (with EOS); for a decoder-only problem the first half of each
  target is the prompt and the rest is the target. Targets are without EOS and padding.
  """
  problem = _as_problem(problem)
  ds = problem.examples(ModeKeys.EVAL, data_dir, hparams)
  if num_samples is not None and num_samples >= 0:
    ds = ds.take(num_samples)
  pairs = []
  with problem.reading_errors(data_dir):
    for example in ds.as_numpy_iterator():
      targets = decoder_lib.strip_ids(example["targets"].reshape(-1))
      if problem.has_inputs:
        pairs.append((example["inputs"].reshape(-1).tolist(), targets))
      else:
        half = len(targets) // 2
        pairs.append((targets[:half], targets[half:]))
  if not pairs:
    raise DataNotFoundError("the dev split of %s in %s has no examples to decode." %
                            (problem.name, data_dir))
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
    target_eos = list(target) + [decoder_lib.EOS_ID]
    decode_eos = list(decode) + [decoder_lib.EOS_ID]
    correct += sum(int(i < len(decode_eos) and decode_eos[i] == t)
                   for i, t in enumerate(target_eos))
    total += len(target_eos)
  n = max(1, len(targets))
  return {"accuracy_per_sequence": exact / n, "accuracy": correct / max(1, total),
          "num_examples": len(targets)}


def decode_dataset(decoder, problem, data_dir, hparams, num_samples=None, log=True,
                   decode_to_file=None):
  """Decodes dev examples and measures them against their targets.

  Args:
    decoder: a Decoder.
    problem: a Problem or its name.
    data_dir: where the data is.
    hparams: the model hparams (for the problem's preprocessing).
    num_samples: examples to decode (-1: all; default the decode hparams' num_samples).
    log: print a few examples (input, decode, target) on stdout.
    decode_to_file: also write the decodes there, one a line.

  Returns:
    `sequence_metrics` of the best decodes.
  """
  problem = _as_problem(problem)
  if num_samples is None:
    num_samples = decoder.hparams.num_samples
  pairs = dev_examples(problem, data_dir, hparams, num_samples)
  results = decoder.decode_with_scores([source for source, _ in pairs])
  best = [beams[0] for beams, _ in results]
  metrics = sequence_metrics(best, [target for _, target in pairs])
  encoders = problem.feature_encoders(data_dir)
  if log:
    source_encoder = encoders["inputs"] if problem.has_inputs else encoders["targets"]
    for (source, target), decode in list(zip(pairs, best))[:5]:
      print("  input:  %s\n  decode: %s\n  target: %s" % (
          source_encoder.decode(source), encoders["targets"].decode(decode),
          encoders["targets"].decode(target)))
  if decode_to_file:
    with tf.io.gfile.GFile(decode_to_file, "w") as f:
      for line in format_decodes(decoder, results, encoders["targets"]):
        f.write(line + "\n")
  return metrics


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
  problem = _as_problem(problem)
  hparams = load_hparams(output_dir, hparams_set)
  restored, _ = restore_model(problem, model, hparams, output_dir, data_dir)
  decoder = decoder_lib.Decoder(restored, decoder_lib.decode_hparams(decode_hparams_overrides))
  metrics = decode_dataset(decoder, problem, data_dir, hparams, num_samples=num_examples,
                           log=False)
  return metrics["accuracy_per_sequence"]


def format_metrics(metrics, problem_name, checkpoint_path):
  return "\n".join([
      "Decoded %d dev examples of %s with %s:" % (
          metrics["num_examples"], problem_name, os.path.basename(checkpoint_path)),
      "  %-26s %.4f" % ("accuracy (per sequence)", metrics["accuracy_per_sequence"]),
      "  %-26s %.4f" % ("accuracy (per token)", metrics["accuracy"]),
  ])

