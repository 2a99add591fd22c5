"""The peer: the encoder-decoder a Keras user would write with keras-hub, trained with fit().

Steps (and seconds) to a per-token accuracy on the same data as benchmarks/peer_steps.py:
the keras-hub encoder-decoder of benchmarks/peer_seq2seq.py (TokenAndPositionEmbedding, N x
TransformerEncoder and N x TransformerDecoder, a Dense softmax; no dropout, keras-hub's
default), `model.fit(jit_compile=..., steps_per_execution=10)` on a fixed number of
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
from benchmarks import peer_seq2seq  # noqa: E402


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
  """(keras.Model, its parts): benchmarks/peer_seq2seq.py's model at args' sizes, no dropout
  (keras-hub's default), start id `vocab_size` (an embedding row of its own)."""
  return peer_seq2seq.build_model(
      vocab_size, args.length, args.layers, args.hidden_size, args.filter_size,
      args.num_heads, dropout=0.0, normalize_first=args.normalize_first, start_id=vocab_size)


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
  model, _ = build_model(args, vocab_size)
  dev_accuracy = make_dev_accuracy(model, dev)
  schedule = keras.optimizers.schedules.CosineDecay(
      0.0, max(1, args.train_steps - args.warmup_steps), warmup_target=args.learning_rate,
      warmup_steps=args.warmup_steps)
  ema = dict(use_ema=True, ema_momentum=args.ema_momentum) if args.ema_momentum else {}
  model.compile(keras.optimizers.Adam(schedule, beta_2=args.adam_beta2, **ema),
                peer_seq2seq.masked_loss(vocab_size),
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
          "normalize_first": args.normalize_first,
          "ema_momentum": args.ema_momentum, "jit_compile": bool(args.jit_compile),
          "mixed_precision": args.mixed_precision,
          "train_steps": args.train_steps, "target": args.target, "steps_to_target": reached,
          "evals": evals}


def main(argv=None):
  args = parse_args(argv)
  record = steps_to_target(args)
  bench_common.report_steps_to_target(record, args.results)


if __name__ == "__main__":
  main()
