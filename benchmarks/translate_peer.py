"""The peer of benchmarks/translate.py: English->German as a Keras user writes it with keras-hub.

    pip install -e '.[bench]'      # keras-hub; never a dependency of t2t_lite itself
    python -m benchmarks.translate_peer --corpus_dir=/tmp/ende --work_dir=/tmp/peer \\
        --budget_s=1200 --results=/tmp/peer/result.json

Built the way keras-hub's users build it, tuned as they would tune it for BLEU on a CPU:

- vocabulary: one SentencePiece model over both sides of the training text
  (`sentencepiece.SentencePieceTrainer`, keras-hub's model type, unigram, with byte fallback so
  names and rare characters survive; pad 0, unk 1, start 2, end 3) read by keras-hub's
  `SentencePieceTokenizer`, which detokenizes losslessly for sacreBLEU;
- batches: `tf.data.Dataset.bucket_by_sequence_length` under a token budget (`--batch_tokens`
  per batch, the size of t2t_lite's batches), so batches are mostly real tokens; sources end
  in the end token in training and at test time alike;
- model (benchmarks/peer_seq2seq.py): pre-norm keras-hub Transformer blocks (the setting that
  trains stably at this rate), Adam (0.9, 0.98, 1e-9) with a linear warmup to a
  `--learning_rate` peak and inverse-square-root decay, label smoothing 0.1;
  `model.fit(steps_per_execution=10)` with the compile options `--jit_compile` and
  `--mixed_precision` (choose its fastest on the machine); stopped after `--budget_s` seconds of
  `fit`;
- decoding: keras-hub's `BeamSampler` / `GreedySampler` over the decoder's caches, XLA-compiled,
  per-row constants out of the reordered state, finished beams frozen (peer_seq2seq); the test
  sentences sorted by length and batched `--decode_batch` at a time, each batch padded to its
  own longest source (a multiple of 8) with an output bound of that + `--extra_length`, every
  shape compiled before the clock starts.

Prints and writes (to --results) one JSON object: steps, training seconds, real target tokens
trained on, BLEU, decoding seconds and sentences/s.
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import peer_seq2seq  # noqa: E402

PAD, UNK, START, END = 0, 1, 2, 3
_QUANTUM = 8


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--corpus_dir", required=True,
                      help="inputs/targets.{train,test}.txt (benchmarks/gettext_corpus.py)")
  parser.add_argument("--work_dir", required=True)
  parser.add_argument("--budget_s", type=float, default=1200.0, help="seconds of model.fit")
  parser.add_argument("--vocab_size", type=int, default=8192)
  parser.add_argument("--model_type", default="unigram", help="SentencePiece model type")
  parser.add_argument("--max_length", type=int, default=128,
                      help="training pairs longer than this (in pieces) are dropped")
  parser.add_argument("--batch_tokens", type=int, default=2048,
                      help="tokens a batch (longest sequence x sequences)")
  parser.add_argument("--layers", type=int, default=2)
  parser.add_argument("--hidden_size", type=int, default=256)
  parser.add_argument("--filter_size", type=int, default=1024)
  parser.add_argument("--num_heads", type=int, default=4)
  parser.add_argument("--dropout", type=float, default=0.1)
  parser.add_argument("--post_norm", action="store_true", help="keras-hub's post-norm blocks")
  parser.add_argument("--learning_rate", type=float, default=1e-3, help="peak rate")
  parser.add_argument("--warmup_steps", type=int, default=400)
  parser.add_argument("--label_smoothing", type=float, default=0.1)
  parser.add_argument("--jit_compile", type=int, default=0, choices=(0, 1))
  parser.add_argument("--mixed_precision", default="",
                      help="a Keras global dtype policy, e.g. mixed_bfloat16")
  parser.add_argument("--beam_size", type=int, default=4)
  parser.add_argument("--decode_batch", type=int, default=32)
  parser.add_argument("--decode_jit_compile", type=int, default=1, choices=(0, 1),
                      help="compile the decode with XLA (1) or run it as a tf.function (0)")
  parser.add_argument("--extra_length", type=int, default=50,
                      help="output bound: a batch's longest source + this")
  parser.add_argument("--test_lines", type=int, default=1000, help="-1: every test line")
  parser.add_argument("--seed", type=int, default=1)
  parser.add_argument("--threads", type=int, default=0, help="0: TensorFlow's default")
  parser.add_argument("--results", default="")
  parser.add_argument("--decode_only", action="store_true",
                      help="load the weights a run saved in --work_dir and decode again, "
                      "keeping that run's training figures from --results")
  return parser.parse_args(argv)


def read_lines(path, limit=-1):
  with open(path, encoding="utf-8") as f:
    lines = [line.rstrip("\n") for line in f]
  return lines if limit < 0 else lines[:limit]


def build_tokenizer(args):
  import keras_hub  # pylint: disable=g-import-not-at-top
  import sentencepiece  # pylint: disable=g-import-not-at-top
  prefix = os.path.join(args.work_dir, "spm")
  if not os.path.exists(prefix + ".model"):
    sentencepiece.SentencePieceTrainer.train(
        input=",".join(os.path.join(args.corpus_dir, name)
                       for name in ("inputs.train.txt", "targets.train.txt")),
        model_prefix=prefix, vocab_size=args.vocab_size, model_type=args.model_type,
        byte_fallback=True, pad_id=PAD, unk_id=UNK, bos_id=START, eos_id=END,
        num_threads=os.cpu_count() or 1, minloglevel=2)
  return keras_hub.tokenizers.SentencePieceTokenizer(prefix + ".model")


def bucket_boundaries(max_length):
  bounds, b = [], 8
  while b < max_length + 2:
    bounds.append(b)
    b = b + 8 if b < 32 else b * 3 // 2
  return bounds + [max_length + 2]


def train_dataset(args, tokenizer):
  """Bucketed batches of ({"inputs", "decoder_inputs"}, targets), about --batch_tokens each."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  sources = read_lines(os.path.join(args.corpus_dir, "inputs.train.txt"))
  targets = read_lines(os.path.join(args.corpus_dir, "targets.train.txt"))

  def prepare(source, target):
    src = tf.concat([tokenizer(source), [END]], 0)
    seq = tf.concat([[START], tokenizer(target), [END]], 0)
    return {"inputs": src, "decoder_inputs": seq[:-1]}, seq[1:]

  def length(features, labels):
    return tf.maximum(tf.shape(features["inputs"])[0], tf.shape(labels)[0])

  bounds = bucket_boundaries(args.max_length)
  sizes = [max(1, args.batch_tokens // b) for b in bounds] + [1]
  ds = tf.data.Dataset.from_tensor_slices((sources, targets)).shuffle(
      len(sources), seed=args.seed, reshuffle_each_iteration=True).repeat()
  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.filter(lambda f, t: length(f, t) <= args.max_length + 1)
  ds = ds.bucket_by_sequence_length(length, bounds, sizes, drop_remainder=True,
                                    pad_to_bucket_boundary=bool(args.jit_compile))
  return ds.prefetch(tf.data.AUTOTUNE)


def warmup_rsqrt(args):
  import keras  # pylint: disable=g-import-not-at-top
  from keras import ops  # pylint: disable=g-import-not-at-top

  class WarmupRsqrt(keras.optimizers.schedules.LearningRateSchedule):

    def __call__(self, step):
      s = ops.cast(step, "float32") + 1.0
      warmup = float(args.warmup_steps)
      return args.learning_rate * ops.minimum(s / warmup, ops.sqrt(warmup / s))

  return WarmupRsqrt()


def decode_lines(args, tokenizer, decode_fn, lines):
  """(decoded strings in input order, seconds): sorted by length, batched, each shape
  compiled before the clock starts."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tokenized = tokenizer(tf.constant(lines))
  tokenized = tokenized.to_list() if hasattr(tokenized, "to_list") else tokenized
  ids = [[int(t) for t in x] + [END] for x in tokenized]
  order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
  batches = []
  for start in range(0, len(order), args.decode_batch):
    chunk = order[start:start + args.decode_batch]
    width = -(-max(len(ids[i]) for i in chunk) // _QUANTUM) * _QUANTUM
    bound = min(width + args.extra_length, args.max_length + 2)
    padded = np.zeros([len(chunk), width], np.int32)
    for row, i in enumerate(chunk):
      seq = ids[i][:width]
      padded[row, :len(seq)] = seq
    batches.append((chunk, tf.constant(padded), tf.zeros([len(chunk), bound], tf.int32)))
  compiled = set()
  for _, source, bound in batches:
    key = (tuple(source.shape), tuple(bound.shape))
    if key not in compiled:
      decode_fn(source, bound).numpy()
      compiled.add(key)
  start = time.time()
  outputs = [(chunk, decode_fn(source, bound).numpy()) for chunk, source, bound in batches]
  seconds = time.time() - start
  pieces = [None] * len(lines)
  for chunk, out in outputs:
    for row, i in enumerate(chunk):
      seq = []
      for token in out[row][1:]:
        if token in (END, PAD):
          break
        seq.append(int(token))
      pieces[i] = seq
  decoded = [_text(tokenizer.detokenize([p])) if p else "" for p in pieces]
  return decoded, seconds


def _text(detokenized):
  value = detokenized[0] if isinstance(detokenized, (list, tuple)) else detokenized.numpy()[0]
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def run(args):
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if args.threads:
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
  if args.mixed_precision:
    keras.mixed_precision.set_global_policy(args.mixed_precision)
  keras.utils.set_random_seed(args.seed)
  os.makedirs(args.work_dir, exist_ok=True)
  start = time.time()
  tokenizer = build_tokenizer(args)
  vocab_seconds = time.time() - start
  vocab_size = tokenizer.vocabulary_size()
  model, parts = peer_seq2seq.build_model(
      vocab_size, args.max_length + 2, args.layers, args.hidden_size, args.filter_size,
      args.num_heads, args.dropout, normalize_first=not args.post_norm)
  model.compile(keras.optimizers.Adam(warmup_rsqrt(args), beta_1=0.9, beta_2=0.98,
                                      epsilon=1e-9),
                peer_seq2seq.masked_loss(vocab_size, args.label_smoothing),
                jit_compile=bool(args.jit_compile), steps_per_execution=10)
  dataset = train_dataset(args, tokenizer)

  class Budget(keras.callbacks.Callback):
    """Stops fit after the budget (checked every steps_per_execution steps)."""

    def __init__(self):
      super().__init__()
      self.fit_start = None
      self.half = None  # (seconds, step) at the first check past half the budget

    def on_train_begin(self, logs=None):
      self.fit_start = time.time()

    def on_train_batch_end(self, batch, logs=None):
      elapsed = time.time() - self.fit_start
      if self.half is None and elapsed >= args.budget_s / 2:
        self.half = (elapsed, int(self.model.optimizer.iterations.numpy()))
      if elapsed >= args.budget_s:
        self.model.stop_training = True

  weights = os.path.join(args.work_dir, "model.weights.h5")
  if args.decode_only:
    model.load_weights(weights)
    with open(args.results, encoding="utf-8") as f:
      trained = json.load(f)
    return finish(args, tokenizer, parts, trained)
  budget = Budget()
  model.fit(dataset, steps_per_epoch=1000, epochs=10 ** 6, callbacks=[budget], verbose=0)
  train_seconds = time.time() - budget.fit_start
  steps = int(model.optimizer.iterations.numpy())
  model.save_weights(weights)
  # Real (non-pad) target tokens a step trains on, and all its target slots, from 200
  # batches of the same pipeline.
  real = slots = 0
  for _, targets in dataset.take(200):
    real += int(tf.reduce_sum(tf.cast(targets > 0, tf.int64)))
    slots += int(tf.size(targets))
  mean_tokens = real / 200

  trained = {
      "pipeline": "keras-hub", "steps": steps, "train_seconds": round(train_seconds, 1),
      "vocab_seconds": round(vocab_seconds, 1), "vocab_size": vocab_size,
      "real_target_tokens_per_step": round(mean_tokens, 1),
      "real_target_share": round(real / max(slots, 1), 3),
      "real_target_tokens_per_second": round(mean_tokens * steps / train_seconds, 1),
      # The second half of the budget alone: the rate once every batch shape is traced.
      "second_half_steps_per_second": round(
          (steps - budget.half[1]) / max(train_seconds - budget.half[0], 1e-9), 3)
                                          if budget.half else None,
      "params": int(model.count_params()),
      "settings": {"jit_compile": args.jit_compile, "mixed_precision": args.mixed_precision,
                   "learning_rate": args.learning_rate, "batch_tokens": args.batch_tokens,
                   "normalize_first": not args.post_norm},
  }
  return finish(args, tokenizer, parts, trained)


def finish(args, tokenizer, parts, trained):
  """Decodes the test sentences, scores them, and writes the result (training figures
  `trained` plus the decode's)."""
  import sacrebleu  # pylint: disable=g-import-not-at-top
  sources = read_lines(os.path.join(args.corpus_dir, "inputs.test.txt"), args.test_lines)
  references = read_lines(os.path.join(args.corpus_dir, "targets.test.txt"), args.test_lines)
  decode_fn = peer_seq2seq.make_decode_fn(parts, START, END, args.beam_size,
                                          jit_compile=bool(args.decode_jit_compile))
  decoded, decode_seconds = decode_lines(args, tokenizer, decode_fn, sources)
  bleu = sacrebleu.corpus_bleu(decoded, [references]).score
  with open(os.path.join(args.work_dir, "test.decodes"), "w", encoding="utf-8") as f:
    f.writelines(line + "\n" for line in decoded)
  result = dict(trained)
  result.update({
      "bleu": round(bleu, 2), "test_lines": len(sources), "beam_size": args.beam_size,
      "decode_seconds": round(decode_seconds, 2),
      "decode_sentences_per_second": round(len(sources) / decode_seconds, 2),
      "output_to_reference_length": round(
          sum(len(d.split()) for d in decoded) / max(1, sum(len(r.split())
                                                             for r in references)), 3),
  })
  print("RESULT " + json.dumps(result), flush=True)
  if args.results:
    with open(args.results, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=2)
  return result


def main(argv=None):
  run(parse_args(argv))


if __name__ == "__main__":
  main()
