"""The peer: the encoder-decoder a Keras user would write with keras-hub, trained with fit().

Steps (and seconds) to a per-token accuracy on the same data as benchmarks/peer_steps.py:
keras-hub's TokenAndPositionEmbedding, N x TransformerEncoder and N x TransformerDecoder,
a Dense softmax, `model.fit(jit_compile=..., steps_per_execution=10)` on a fixed number of
sequences a batch padded to the problem's longest example, Adam (beta2 `--adam_beta2`, Keras's
0.999 by default; epsilon 1e-7) with a cosine decay from `--learning_rate` after
`--warmup_steps`. Every `--eval_every` steps it measures the per-token, teacher-forced
accuracy over the whole dev split (the tokens t2t_lite's `accuracy` counts: every target
token, EOS included, padding not) and stops at the first evaluation that reaches `--target`.

keras-hub is not a dependency of t2t_lite (setup.py's `bench` extra installs it):

    pip install -e '.[bench]'
    python -m benchmarks.peer_keras_hub --seed=1 --data_dir=/tmp/rev40/data

`--normalize_first` gives pre-norm blocks (and a final layer norm after each stack);
keras-hub's default is post-norm. The decoder reads the targets shifted right behind a start
id of its own (`vocab_size`), so that keras-hub's padding mask (`mask_zero`) never hides it.
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import common as bench_common  # noqa: E402


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--problem", default="algorithmic_reverse_binary40")
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--seed", type=int, default=1)
  parser.add_argument("--batch_sequences", type=int, default=8)
  parser.add_argument("--length", type=int, default=41, help="pad every sequence to this")
  parser.add_argument("--layers", type=int, default=2)
  parser.add_argument("--hidden_size", type=int, default=128)
  parser.add_argument("--filter_size", type=int, default=512)
  parser.add_argument("--num_heads", type=int, default=4)
  parser.add_argument("--normalize_first", action="store_true", help="pre-norm blocks")
  parser.add_argument("--sinusoidal", action="store_true",
                      help="sinusoidal positions (keras-hub's SinePositionEncoding) instead "
                      "of learned ones")
  parser.add_argument("--learning_rate", type=float, default=1e-3)
  parser.add_argument("--warmup_steps", type=int, default=200)
  parser.add_argument("--adam_beta2", type=float, default=0.999, help="Adam's beta_2 "
                      "(Keras's default 0.999; Transformer recipes often use 0.98)")
  parser.add_argument("--jit_compile", type=int, default=1, choices=(0, 1),
                      help="fit(jit_compile=...): 1 XLA, 0 a plain tf.function")
  parser.add_argument("--mixed_precision", default="",
                      help="a Keras global dtype policy (mixed_bfloat16, mixed_float16); "
                      "the logits layer stays float32, as Keras's mixed-precision guide says")
  parser.add_argument("--ema_momentum", type=float, default=0.0,
                      help="> 0: Adam(use_ema=True) and keras.callbacks.SwapEMAWeights, so "
                      "the evaluations read the moving average of the weights")
  parser.add_argument("--train_steps", type=int, default=8000,
                      help="the schedule's length (cosine decays over it)")
  parser.add_argument("--max_steps", type=int, default=0, help="default: train_steps")
  parser.add_argument("--eval_every", type=int, default=500)
  parser.add_argument("--target", type=float, default=0.99)
  parser.add_argument("--threads", type=int, default=1, help="TensorFlow intra-op threads")
  parser.add_argument("--name", default="keras_hub")
  parser.add_argument("--results", default="", help="a .jsonl file to append the run to")
  return parser.parse_args(argv)


def datasets(args, vocab_size):
  """(train, dev) tf.data: ({"inputs", "decoder_inputs"}, targets) padded to args.length."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  from t2t_lite.bin import common  # pylint: disable=g-import-not-at-top
  from t2t_lite.constants import ModeKeys  # pylint: disable=g-import-not-at-top
  common.import_registrations(None)
  problem = registry.problem(args.problem)
  length = args.length

  def to_pair(example):
    targets = example["targets"][:length]
    start = tf.constant([vocab_size], targets.dtype)
    decoder_inputs = tf.concat([start, targets[:-1]], 0)
    return {"inputs": example["inputs"][:length], "decoder_inputs": decoder_inputs}, targets

  shapes = ({"inputs": [length], "decoder_inputs": [length]}, [length])
  train = problem.examples(ModeKeys.TRAIN, args.data_dir, shuffle=True, seed=args.seed,
                           repeat=True)
  train = train.map(to_pair).shuffle(1024, seed=args.seed)
  train = train.padded_batch(args.batch_sequences, shapes, drop_remainder=True)
  dev = problem.examples(ModeKeys.EVAL, args.data_dir).map(to_pair)
  dev = dev.padded_batch(512, shapes)
  return train.prefetch(tf.data.AUTOTUNE), dev.prefetch(tf.data.AUTOTUNE)


def build_model(args, vocab_size):
  import keras  # pylint: disable=g-import-not-at-top
  import keras_hub  # pylint: disable=g-import-not-at-top

  def embed(ids, vocab, name):
    if args.sinusoidal:
      x = keras.layers.Embedding(vocab, args.hidden_size, mask_zero=True,
                                 name=name + "_tokens")(ids)
      return x + keras_hub.layers.SinePositionEncoding()(x)
    return keras_hub.layers.TokenAndPositionEmbedding(
        vocab, args.length, args.hidden_size, mask_zero=True, name=name)(ids)

  inputs = keras.Input((None,), dtype="int32", name="inputs")
  decoder_inputs = keras.Input((None,), dtype="int32", name="decoder_inputs")
  x = embed(inputs, vocab_size, "input_embedding")
  for i in range(args.layers):
    x = keras_hub.layers.TransformerEncoder(
        args.filter_size, args.num_heads, normalize_first=args.normalize_first,
        name="encoder_%d" % i)(x)
  if args.normalize_first:
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="encoder_norm")(x)
  y = embed(decoder_inputs, vocab_size + 1, "target_embedding")
  for i in range(args.layers):
    y = keras_hub.layers.TransformerDecoder(
        args.filter_size, args.num_heads, normalize_first=args.normalize_first,
        name="decoder_%d" % i)(y, x)
  if args.normalize_first:
    y = keras.layers.LayerNormalization(epsilon=1e-5, name="decoder_norm")(y)
  logits = keras.layers.Dense(vocab_size, name="logits", dtype="float32")(y)
  return keras.Model({"inputs": inputs, "decoder_inputs": decoder_inputs}, logits)


def masked_loss(targets, logits):
  """Mean cross-entropy over the real (non-padding) target tokens."""
  from keras import ops  # pylint: disable=g-import-not-at-top
  weights = ops.cast(ops.not_equal(targets, 0), "float32")
  ce = ops.sparse_categorical_crossentropy(targets, logits, from_logits=True)
  return ops.sum(ce * weights) / ops.maximum(ops.sum(weights), 1.0)


def make_dev_accuracy(model, dev):
  """A function of no arguments: the model's per-token accuracy over `dev` now."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  @tf.function(reduce_retracing=True)
  def counts(features, targets):
    predictions = tf.argmax(model(features, training=False), -1, output_type=targets.dtype)
    real = tf.not_equal(targets, 0)
    right = tf.reduce_sum(tf.cast(tf.logical_and(tf.equal(predictions, targets), real),
                                  tf.int64))
    return right, tf.reduce_sum(tf.cast(real, tf.int64))

  def accuracy():
    right = total = 0
    for features, targets in dev:
      r, t = counts(features, targets)
      right, total = right + int(r), total + int(t)
    return right / max(total, 1)

  return accuracy


def steps_to_target(args):
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(args.threads)
  tf.config.threading.set_inter_op_parallelism_threads(max(2, args.threads))
  keras.utils.set_random_seed(args.seed)
  if args.mixed_precision:
    keras.mixed_precision.set_global_policy(args.mixed_precision)
  vocab_size = 4  # PAD, EOS and the two symbols of algorithmic_*_binary40
  train, dev = datasets(args, vocab_size)
  model = build_model(args, vocab_size)
  dev_accuracy = make_dev_accuracy(model, dev)
  schedule = keras.optimizers.schedules.CosineDecay(
      0.0, max(1, args.train_steps - args.warmup_steps), warmup_target=args.learning_rate,
      warmup_steps=args.warmup_steps)
  ema = dict(use_ema=True, ema_momentum=args.ema_momentum) if args.ema_momentum else {}
  model.compile(keras.optimizers.Adam(schedule, beta_2=args.adam_beta2, **ema), masked_loss,
                jit_compile=bool(args.jit_compile),
                steps_per_execution=10)
  evals, reached = [], None
  max_steps = args.max_steps or args.train_steps
  start, train_seconds = time.time(), 0.0

  class Evaluate(keras.callbacks.Callback):

    def __init__(self):
      super().__init__()
      self.epoch_start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
      self.epoch_start = time.time()

    def on_epoch_end(self, epoch, logs=None):
      nonlocal reached, train_seconds
      train_seconds += time.time() - self.epoch_start
      step = int(self.model.optimizer.iterations.numpy())
      accuracy = dev_accuracy()
      evals.append({"step": step, "accuracy": round(accuracy, 5),
                    "train_seconds": round(train_seconds, 1)})
      print("%s step %d accuracy %.4f loss %.4f (train %.0f s, %.0f s)" % (
          args.name, step, accuracy, logs["loss"], train_seconds, time.time() - start),
            flush=True)
      if accuracy >= args.target and reached is None:
        reached = step
        self.model.stop_training = True

  model.fit(train, steps_per_epoch=args.eval_every, epochs=max_steps // args.eval_every,
            # SwapEMAWeights first: its on_epoch_end puts the average in before Evaluate's.
            callbacks=([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)]
                       if args.ema_momentum else []) + [Evaluate()], verbose=0)
  return {"name": args.name, "seed": args.seed, "batch_sequences": args.batch_sequences,
          "normalize_first": args.normalize_first, "sinusoidal": args.sinusoidal,
          "ema_momentum": args.ema_momentum, "jit_compile": bool(args.jit_compile),
          "mixed_precision": args.mixed_precision,
          "train_steps": args.train_steps, "target": args.target, "steps_to_target": reached,
          "evals": evals}


def cached_generate_fn(model, args, sampler, num_tokens, pad_id=0):
  """A function `inputs -> ids`: `sampler` (keras_hub.samplers.GreedySampler, BeamSampler...)
  over `model`'s decoder layers with their key/value caches, as keras-hub's seq2seq models
  (BART) generate: the encoder once, each decoder layer's cross-attention keys and values
  computed once (`cross_attention_cache_update_index=0`), then one position per step
  (`self_attention_cache_update_index`). Every row decodes `num_tokens` tokens (no stop
  token). PAD is never chosen (the model's padding mask would hide it). Call it inside a
  `tf.function` (jit_compile or not)."""
  from keras import ops  # pylint: disable=g-import-not-at-top
  vocab_size = model.get_layer("logits").units
  start_id = vocab_size  # the decoder's start id (see datasets)
  heads, head_dim = args.num_heads, args.hidden_size // args.num_heads
  decoders = [model.get_layer("decoder_%d" % i) for i in range(args.layers)]
  target_embedding = model.get_layer("target_embedding")
  logits_layer = model.get_layer("logits")
  decoder_norm = model.get_layer("decoder_norm") if args.normalize_first else None
  never_pad = ops.one_hot(ops.convert_to_tensor([pad_id]), vocab_size)[0] * -1e9

  def encode(inputs):
    x = model.get_layer("input_embedding")(inputs)
    for i in range(args.layers):
      x = model.get_layer("encoder_%d" % i)(x)
    if args.normalize_first:
      x = model.get_layer("encoder_norm")(x)
    return x

  def decoder_step(ids, index, self_caches, cross_caches, encoder_output, fill_cross):
    """ids [B, 1] at position `index` -> logits [B, V] and the updated caches."""
    y = target_embedding(ids, start_index=index)
    new_self, new_cross = [], []
    for i, layer in enumerate(decoders):
      y, self_cache, cross_cache = layer(
          y, encoder_output, self_attention_cache=self_caches[:, i],
          self_attention_cache_update_index=index, cross_attention_cache=cross_caches[:, i],
          cross_attention_cache_update_index=0 if fill_cross else None)
      new_self.append(self_cache)
      new_cross.append(cross_cache)
    if decoder_norm is not None:
      y = decoder_norm(y)
    logits = logits_layer(y)[:, 0] + never_pad
    return logits, ops.stack(new_self, 1), ops.stack(new_cross, 1)

  def generate(inputs):
    batch, source_length = ops.shape(inputs)[0], ops.shape(inputs)[1]
    encoder_output = encode(inputs)
    length = num_tokens + 1
    prompt = ops.concatenate([ops.full((batch, 1), start_id, "int32"),
                              ops.zeros((batch, num_tokens), "int32")], 1)
    self_caches = ops.zeros((batch, args.layers, 2, length, heads, head_dim))
    cross_caches = ops.zeros((batch, args.layers, 2, source_length, heads, head_dim))
    # The prefill: position 0 (the start id) fills the cross-attention caches.
    _, self_caches, cross_caches = decoder_step(prompt[:, :1], 0, self_caches, cross_caches,
                                                encoder_output, True)

    def next_fn(prompt, cache, index):
      self_caches, cross_caches, encoder_output = cache
      ids = ops.slice(prompt, [0, index - 1], [ops.shape(prompt)[0], 1])
      logits, self_caches, cross_caches = decoder_step(
          ids, index - 1, self_caches, cross_caches, encoder_output,
          False)
      return logits, None, (self_caches, cross_caches, encoder_output)

    # The encoder output rides in the cache so that beam search repeats it per beam (it only
    # shapes the cross-attention mask once the caches are filled).
    ids = sampler(next_fn, prompt, cache=(self_caches, cross_caches, encoder_output), index=1)
    return ids[..., 1:]

  return generate


def full_greedy_fn(model, num_tokens, pad_id=0):
  """Greedy decoding that reruns the whole model on the growing prefix (the check of
  cached_generate_fn; PAD never chosen, as there)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  vocab_size = model.get_layer("logits").units

  def generate(inputs):
    batch = tf.shape(inputs)[0]
    ids = tf.fill([batch, 1], vocab_size)
    for _ in range(num_tokens):
      logits = model({"inputs": inputs, "decoder_inputs": ids}, training=False)[:, -1]
      logits += tf.one_hot(pad_id, vocab_size) * -1e9
      ids = tf.concat([ids, tf.argmax(logits, -1, output_type=tf.int32)[:, None]], 1)
    return ids[:, 1:]

  return generate


def main(argv=None):
  args = parse_args(argv)
  record = steps_to_target(args)
  bench_common.report_steps_to_target(record, args.results)


if __name__ == "__main__":
  main()
