"""The peer of benchmarks/translate.py: English->German as a Keras user writes it with keras-hub.

    pip install -e '.[bench]'      # keras-hub; never a dependency of t2t_lite itself
    python -m benchmarks.translate_peer --corpus_dir=/tmp/ende --work_dir=/tmp/peer \\
        --budget_s=1200 --results=/tmp/peer/result.json

The pipeline follows keras-hub's own translation guide, with the choices a user who wants BLEU
would make on a CPU:

- vocabulary: `keras_hub.tokenizers.compute_sentence_piece_proto` over both sides of the
  training text (one shared vocabulary of `--vocab_size` pieces, the size t2t_lite gets) and
  `SentencePieceTokenizer` (detokenizes losslessly, so sacreBLEU scores real text; the guide's
  WordPiece tokenizer puts spaces around punctuation, which would cost the peer BLEU for a
  reason that has nothing to do with its model);
- model: `TokenAndPositionEmbedding`, `--layers` x `TransformerEncoder` and
  `TransformerDecoder` (keras-hub's defaults: post-norm, its initializers), a Dense softmax,
  every sequence padded to `--length` pieces (`StartEndPacker`);
- training: `model.fit(jit_compile=True, steps_per_execution=10)`, Adam with linear warmup and
  inverse-square-root decay (the schedule t2t_lite's set uses), masked cross-entropy with label
  smoothing 0.1 as t2t_lite's; stopped after `--budget_s` seconds of `fit`;
- decoding: keras-hub's `BeamSampler(num_beams=4)` (or `GreedySampler`) over the decoder's
  key/value caches (`self_attention_cache` / `cross_attention_cache`), in one XLA-compiled
  `tf.function`, `--decode_batch` sentences a batch; sacreBLEU on the detokenized output.

Prints and writes (to --results) one JSON object: steps, training seconds, real target tokens
trained on, BLEU, decoding seconds and sentences/s.
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--corpus_dir", required=True,
                      help="inputs/targets.{train,test}.txt (benchmarks/gettext_corpus.py)")
  parser.add_argument("--work_dir", required=True)
  parser.add_argument("--budget_s", type=float, default=1200.0, help="seconds of model.fit")
  parser.add_argument("--vocab_size", type=int, default=8192)
  parser.add_argument("--length", type=int, default=64, help="pieces a sequence is padded to")
  parser.add_argument("--layers", type=int, default=3)
  parser.add_argument("--hidden_size", type=int, default=256)
  parser.add_argument("--filter_size", type=int, default=1024)
  parser.add_argument("--num_heads", type=int, default=4)
  parser.add_argument("--dropout", type=float, default=0.1)
  parser.add_argument("--normalize_first", action="store_true", help="pre-norm blocks")
  parser.add_argument("--batch_sequences", type=int, default=64)
  parser.add_argument("--learning_rate", type=float, default=2.0,
                      help="the constant of constant * rsqrt(hidden) * min(s/warmup, 1) * "
                      "rsqrt(max(s, warmup))")
  parser.add_argument("--warmup_steps", type=int, default=1000)
  parser.add_argument("--label_smoothing", type=float, default=0.1)
  parser.add_argument("--beam_size", type=int, default=4)
  parser.add_argument("--decode_batch", type=int, default=32)
  parser.add_argument("--test_lines", type=int, default=1000, help="-1: every test line")
  parser.add_argument("--seed", type=int, default=1)
  parser.add_argument("--threads", type=int, default=0, help="0: TensorFlow's default")
  parser.add_argument("--results", default="")
  return parser.parse_args(argv)


def read_lines(path, limit=-1):
  with open(path, encoding="utf-8") as f:
    lines = [line.rstrip("\n") for line in f]
  return lines if limit < 0 else lines[:limit]


def build_tokenizer(args):
  import keras_hub  # pylint: disable=g-import-not-at-top
  proto = os.path.join(args.work_dir, "spm.model")
  if not os.path.exists(proto):
    keras_hub.tokenizers.compute_sentence_piece_proto(
        [os.path.join(args.corpus_dir, name) for name in ("inputs.train.txt",
                                                          "targets.train.txt")],
        args.vocab_size, proto_output_file=proto)
  return keras_hub.tokenizers.SentencePieceTokenizer(proto)


def train_dataset(args, tokenizer):
  import keras_hub  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  sources = read_lines(os.path.join(args.corpus_dir, "inputs.train.txt"))
  targets = read_lines(os.path.join(args.corpus_dir, "targets.train.txt"))
  bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
  encoder_packer = keras_hub.layers.StartEndPacker(args.length, end_value=eos)
  decoder_packer = keras_hub.layers.StartEndPacker(args.length + 1, start_value=bos,
                                                   end_value=eos)

  def prepare(source, target):
    inputs = encoder_packer(tokenizer(source))
    sequence = decoder_packer(tokenizer(target))
    return {"inputs": inputs, "decoder_inputs": sequence[:, :-1]}, sequence[:, 1:]

  ds = tf.data.Dataset.from_tensor_slices((sources, targets)).shuffle(
      len(sources), seed=args.seed, reshuffle_each_iteration=True).repeat()
  ds = ds.batch(args.batch_sequences, drop_remainder=True).map(
      prepare, num_parallel_calls=tf.data.AUTOTUNE)
  return ds.prefetch(tf.data.AUTOTUNE)


def build_model(args, vocab_size):
  import keras  # pylint: disable=g-import-not-at-top
  import keras_hub  # pylint: disable=g-import-not-at-top
  layers = {
      "source_embedding": keras_hub.layers.TokenAndPositionEmbedding(
          vocab_size, args.length, args.hidden_size, mask_zero=True, name="source_embedding"),
      "target_embedding": keras_hub.layers.TokenAndPositionEmbedding(
          vocab_size, args.length, args.hidden_size, mask_zero=True, name="target_embedding"),
      "encoders": [keras_hub.layers.TransformerEncoder(
          args.filter_size, args.num_heads, dropout=args.dropout,
          normalize_first=args.normalize_first, name="encoder_%d" % i)
                   for i in range(args.layers)],
      "decoders": [keras_hub.layers.TransformerDecoder(
          args.filter_size, args.num_heads, dropout=args.dropout,
          normalize_first=args.normalize_first, name="decoder_%d" % i)
                   for i in range(args.layers)],
      "logits": keras.layers.Dense(vocab_size, name="logits"),
  }
  if args.normalize_first:
    layers["encoder_norm"] = keras.layers.LayerNormalization(epsilon=1e-5, name="encoder_norm")
    layers["decoder_norm"] = keras.layers.LayerNormalization(epsilon=1e-5, name="decoder_norm")
  inputs = keras.Input((None,), dtype="int32", name="inputs")
  decoder_inputs = keras.Input((None,), dtype="int32", name="decoder_inputs")
  x = layers["source_embedding"](inputs)
  for encoder in layers["encoders"]:
    x = encoder(x)
  if args.normalize_first:
    x = layers["encoder_norm"](x)
  y = layers["target_embedding"](decoder_inputs)
  for decoder in layers["decoders"]:
    y = decoder(y, x)
  if args.normalize_first:
    y = layers["decoder_norm"](y)
  model = keras.Model({"inputs": inputs, "decoder_inputs": decoder_inputs},
                      layers["logits"](y))
  return model, layers


def make_loss(label_smoothing, vocab_size):
  from keras import ops  # pylint: disable=g-import-not-at-top

  def masked_loss(targets, logits):
    weights = ops.cast(ops.not_equal(targets, 0), "float32")
    one_hot = ops.one_hot(targets, vocab_size)
    if label_smoothing:
      one_hot = one_hot * (1.0 - label_smoothing) + label_smoothing / vocab_size
    ce = ops.categorical_crossentropy(one_hot, logits, from_logits=True)
    return ops.sum(ce * weights) / ops.maximum(ops.sum(weights), 1.0)

  return masked_loss


def rsqrt_schedule(args):
  import keras  # pylint: disable=g-import-not-at-top
  from keras import ops  # pylint: disable=g-import-not-at-top

  class WarmupRsqrt(keras.optimizers.schedules.LearningRateSchedule):

    def __call__(self, step):
      s = ops.cast(step, "float32") + 1.0
      warmup = float(args.warmup_steps)
      return (args.learning_rate * args.hidden_size ** -0.5 * ops.minimum(1.0, s / warmup) *
              ops.rsqrt(ops.maximum(s, warmup)))

  return WarmupRsqrt()


def make_decode_fn(args, layers, bos, eos):
  """A jit-compiled tf.function: padded source ids [B, length] -> target ids [B, length+1]
  (BOS first), with keras-hub's sampler over the decoder's caches."""
  import keras_hub  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from keras import ops  # pylint: disable=g-import-not-at-top
  heads, key_dim = args.num_heads, args.hidden_size // args.num_heads
  max_length = args.length + 1
  sampler = (keras_hub.samplers.BeamSampler(num_beams=args.beam_size) if args.beam_size > 1
             else keras_hub.samplers.GreedySampler())

  def run_decoders(token_ids, index, memory, memory_mask, self_caches, cross_caches,
                   cross_index):
    x = layers["target_embedding"](token_ids, start_index=index)
    new_self, new_cross = [], []
    for decoder, self_cache, cross_cache in zip(layers["decoders"], self_caches, cross_caches):
      x, self_cache, cross_cache = decoder(
          x, encoder_sequence=memory, encoder_padding_mask=memory_mask,
          self_attention_cache=self_cache, self_attention_cache_update_index=index,
          cross_attention_cache=cross_cache, cross_attention_cache_update_index=cross_index)
      new_self.append(self_cache)
      new_cross.append(cross_cache)
    if args.normalize_first:
      x = layers["decoder_norm"](x)
    return layers["logits"](x)[:, 0], tuple(new_self), tuple(new_cross)

  def decode(source):
    batch = tf.shape(source)[0]
    memory_mask = ops.not_equal(source, 0)
    memory = layers["source_embedding"](source)
    for encoder in layers["encoders"]:
      memory = encoder(memory, padding_mask=memory_mask)
    if args.normalize_first:
      memory = layers["encoder_norm"](memory)
    zeros_self = tf.zeros([batch, 2, max_length, heads, key_dim])
    zeros_cross = tf.zeros([batch, 2, tf.shape(source)[1], heads, key_dim])
    prompt = tf.concat([tf.fill([batch, 1], bos),
                        tf.zeros([batch, max_length - 1], tf.int32)], 1)
    # Fill the caches from the start token (position 0): keras-hub's CausalLM prefill.
    _, self_caches, cross_caches = run_decoders(
        prompt[:, :1], 0, memory, memory_mask, (zeros_self,) * len(layers["decoders"]),
        (zeros_cross,) * len(layers["decoders"]), 0)

    def next_fn(prompt, cache, index):
      self_caches, cross_caches, memory, memory_mask = cache
      token = ops.slice(prompt, [0, index - 1], [ops.shape(prompt)[0], 1])  # static [B, 1]
      logits, self_caches, cross_caches = run_decoders(
          token, index - 1, memory, memory_mask, self_caches,
          cross_caches, None)
      return logits, None, (self_caches, cross_caches, memory, memory_mask)

    return sampler(next_fn, prompt, cache=(self_caches, cross_caches, memory, memory_mask),
                   index=1, stop_token_ids=[eos])

  return tf.function(decode, jit_compile=True)


def decode_lines(args, tokenizer, decode_fn, lines):
  """(decoded strings, seconds) for `lines`, in batches of --decode_batch (the first batch
  is run once before the clock starts, to compile)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  eos = tokenizer.token_to_id("</s>")
  tokenized = tokenizer(tf.constant(lines))
  tokenized = tokenized.to_list() if hasattr(tokenized, "to_list") else tokenized
  ids = [list(x)[:args.length] for x in tokenized]
  batches = []
  for start in range(0, len(ids), args.decode_batch):
    chunk = ids[start:start + args.decode_batch]
    chunk += [[]] * (args.decode_batch - len(chunk))  # one shape: one compilation
    padded = np.zeros([args.decode_batch, args.length], np.int32)
    for row, seq in enumerate(chunk):
      padded[row, :len(seq)] = seq
    batches.append(padded)
  decode_fn(tf.constant(batches[0])).numpy()  # compile
  start = time.time()
  outputs = [decode_fn(tf.constant(b)).numpy() for b in batches]
  seconds = time.time() - start
  texts = []
  for out in outputs:
    for row in out:
      pieces = []
      for token in row[1:]:
        if token == eos or token == 0:
          break
        pieces.append(int(token))
      texts.append(pieces)
  texts = texts[:len(lines)]
  decoded = [_text(tokenizer.detokenize([t])) if t else "" for t in texts]
  return decoded, seconds


def _text(detokenized):
  value = detokenized[0] if isinstance(detokenized, (list, tuple)) else detokenized.numpy()[0]
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def run(args):
  import keras  # pylint: disable=g-import-not-at-top
  import sacrebleu  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if args.threads:
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
  keras.utils.set_random_seed(args.seed)
  os.makedirs(args.work_dir, exist_ok=True)
  start = time.time()
  tokenizer = build_tokenizer(args)
  vocab_seconds = time.time() - start
  vocab_size = tokenizer.vocabulary_size()
  model, layers = build_model(args, vocab_size)
  model.compile(keras.optimizers.Adam(rsqrt_schedule(args), beta_1=0.9, beta_2=0.98,
                                      epsilon=1e-9),
                make_loss(args.label_smoothing, vocab_size), jit_compile=True,
                steps_per_execution=10)
  dataset = train_dataset(args, tokenizer)

  class Budget(keras.callbacks.Callback):
    """Stops fit after the budget (checked every steps_per_execution steps)."""

    def __init__(self):
      super().__init__()
      self.fit_start = None

    def on_train_begin(self, logs=None):
      self.fit_start = time.time()

    def on_train_batch_end(self, batch, logs=None):
      if time.time() - self.fit_start >= args.budget_s:
        self.model.stop_training = True

  budget = Budget()
  model.fit(dataset, steps_per_epoch=1000, epochs=10 ** 6, callbacks=[budget], verbose=0)
  train_seconds = time.time() - budget.fit_start
  steps = int(model.optimizer.iterations.numpy())
  # Real (non-pad) target tokens a step trains on, from 50 batches of the same pipeline.
  tokens_per_batch = []
  for _, targets in dataset.take(50):
    tokens_per_batch.append(int(tf.reduce_sum(tf.cast(targets > 0, tf.int64))))
  mean_tokens = sum(tokens_per_batch) / len(tokens_per_batch)

  sources = read_lines(os.path.join(args.corpus_dir, "inputs.test.txt"), args.test_lines)
  references = read_lines(os.path.join(args.corpus_dir, "targets.test.txt"), args.test_lines)
  bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
  decode_fn = make_decode_fn(args, layers, bos, eos)
  decoded, decode_seconds = decode_lines(args, tokenizer, decode_fn, sources)
  bleu = sacrebleu.corpus_bleu(decoded, [references]).score
  with open(os.path.join(args.work_dir, "test.decodes"), "w", encoding="utf-8") as f:
    f.writelines(line + "\n" for line in decoded)
  result = {
      "pipeline": "keras-hub", "steps": steps, "train_seconds": round(train_seconds, 1),
      "vocab_seconds": round(vocab_seconds, 1), "vocab_size": vocab_size,
      "real_target_tokens_per_step": round(mean_tokens, 1),
      "real_target_tokens_per_second": round(mean_tokens * steps / train_seconds, 1),
      "bleu": round(bleu, 2), "test_lines": len(sources), "beam_size": args.beam_size,
      "decode_seconds": round(decode_seconds, 2),
      "decode_sentences_per_second": round(len(sources) / decode_seconds, 2),
      "params": int(model.count_params()),
  }
  print("RESULT " + json.dumps(result), flush=True)
  if args.results:
    with open(args.results, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=2)
  return result


def main(argv=None):
  run(parse_args(argv))


if __name__ == "__main__":
  main()
