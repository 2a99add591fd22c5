"""Training speed: tokens/s and model FLOPs utilization of t2t_lite's loop.

    python -m benchmarks.train

transformer_small on algorithmic_reverse_binary40 at a 4096-token batch, measured in one
process:
  - MFU = the model's FLOPs per step (counted from the layer shapes of each batch: every
    matmul of the forward pass, times 3 for forward + backward) / step time / the peak matmul
    FLOP/s of this machine measured in the same process; with and without XLA.
  - t2t_lite's loop against keras `model.fit` on the same model and the same batches: the
    ratio of their tokens/s (t2t_lite / fit), both without XLA.
  - the peak resident memory of the process.
  - the MFU of the same loop with transformer_small's three dropouts at 0 (no XLA), which
    says what dropout costs;
  - for scale, the MFU of a plain Keras decoder of the same size stepped in a bare
    tf.function (no dropout), with and without XLA, on the same batches.
Every timing is the best of T2T_BENCH_REPEATS (default 3) passes over the same 30 batches,
the passes of the loops timed in the same phase interleaved.
"""
import os
import resource
import sys
import tempfile

from benchmarks import common

PROBLEM = "algorithmic_reverse_binary40"
STEPS = 30
ROUNDS = max(1, int(os.environ.get("T2T_BENCH_REPEATS", "3")))


def batch_flops(inputs_shape, targets_shape, hp, vocab):
  """Matmul FLOPs of one forward pass of the transformer on padded [B, T] batches."""
  b, ti = inputs_shape
  _, tt = targets_shape
  d, f = hp.hidden_size, hp.filter_size
  layers = hp.num_hidden_layers

  def dense(tokens, n_in, n_out):
    return 2.0 * tokens * n_in * n_out

  enc = layers * (dense(b * ti, d, 3 * d) + dense(b * ti, d, d) + dense(b * ti, d, f) +
                  dense(b * ti, f, d) + 2 * 2.0 * b * ti * ti * d)
  dec = layers * (dense(b * tt, d, 3 * d) + dense(b * tt, d, d) + 2 * 2.0 * b * tt * tt * d +
                  dense(b * tt, d, d) + dense(b * ti, d, 2 * d) + dense(b * tt, d, d) +
                  2 * 2.0 * b * tt * ti * d + dense(b * tt, d, f) + dense(b * tt, f, d))
  return enc + dec + dense(b * tt, d, vocab)


def _setup():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import problems  # noqa: F401  pylint: disable=unused-import
  import t2t_lite.models  # noqa: F401  pylint: disable=unused-import
  from t2t_lite import registry
  problem = registry.problem(PROBLEM)
  data_dir = os.path.join(tempfile.gettempdir(), "t2t_lite_bench_data")
  if not problem.data_exists(data_dir):
    problem.generate_data(data_dir, os.path.join(tempfile.gettempdir(), "t2t_lite_bench_tmp"))
  hp = registry.hparams("transformer_small")
  hp.batch_size = 4096
  hp.deterministic_data = True
  batches = list(problem.dataset("train", data_dir, hp, seed=1).take(STEPS + 3))
  return tf, registry, problem, data_dir, hp, batches


def _seconds_of(fn):
  """A function that calls fn() and returns the seconds it took (common.timed: what fn
  returns is dropped after the clock stops; the trainer keeps one iterator for the whole run,
  and deleting one here can block for seconds)."""
  return lambda: common.timed(fn).seconds


def _t2t_runner(tf, problem, data_dir, hp, batches, xla, dropout=True):
  """A function that trains on batches[3:] once with t2t_lite's loop and returns seconds."""
  from t2t_lite.training import Trainer  # pylint: disable=g-import-not-at-top
  hp = hp.copy()
  hp.xla_compile = xla
  if not dropout:
    hp.layer_prepostprocess_dropout = hp.attention_dropout = hp.relu_dropout = 0.0
  hp.iterations_per_loop = 10
  trainer = Trainer(problem, "transformer", hp, data_dir, tempfile.mkdtemp(), 10 ** 6,
                    random_seed=1)
  train_fn = trainer.make_train_fn()

  def run(feats):
    ds = tf.data.Dataset.from_generator(lambda: iter(feats), output_signature={
        k: tf.TensorSpec([None, None], tf.int32) for k in feats[0]})
    iterator = iter(ds)
    out = train_fn(iterator, tf.constant(len(feats), tf.int64))
    float(out[0])
    return iterator  # deleted after the clock stops

  run(batches[:3])  # trace (and, with XLA, compile the shapes seen so far)
  if xla:
    run(batches[3:])  # compile every bucket shape before timing

  return _seconds_of(lambda: run(batches[3:]))


def _fit_runner(tf, registry, problem, hp, batches):
  """A function that trains on batches[3:] once with keras `model.fit`; returns seconds."""
  from t2t_lite.models import losses  # pylint: disable=g-import-not-at-top
  model = registry.model("transformer")(hp, problem.get_hparams(hp))
  model(batches[0], training=False)
  from t2t_lite.training import optimizers  # pylint: disable=g-import-not-at-top

  def loss_fn(y_true, y_pred):
    loss_sum, weight_sum = losses.padded_cross_entropy(y_pred, y_true, hp.label_smoothing)
    return loss_sum / tf.maximum(weight_sum, 1.0)

  model.compile(optimizer=optimizers.create_optimizer(hp, 10 ** 6), loss=loss_fn,
                jit_compile=False)
  spec = {k: tf.TensorSpec([None, None], tf.int32) for k in batches[0]}

  def dataset(feats):
    return tf.data.Dataset.from_generator(lambda: iter(feats), output_signature=spec).map(
        lambda f: (f, f["targets"]))

  model.fit(dataset(batches[:3]), epochs=1, verbose=0)

  return _seconds_of(lambda: model.fit(dataset(batches[3:]), epochs=1, verbose=0))


def _reference_runner(tf, hp, batches, xla):
  """The yardstick: a plain Keras decoder of transformer_small's size (2 x
  num_hidden_layers blocks of keras.layers.MultiHeadAttention + a ReLU feed-forward, post-norm,
  no dropout), stepped with Adam in a bare tf.function over each batch's inputs and targets
  joined into one sequence. Returns (timed function, its matmul FLOPs per pass)."""
  import keras  # pylint: disable=g-import-not-at-top
  d, f, heads = hp.hidden_size, hp.filter_size, hp.num_heads
  layers, vocab = 2 * hp.num_hidden_layers, 256
  tokens = keras.Input((None,), dtype="int32")
  x = keras.layers.Embedding(vocab, d)(tokens)
  for _ in range(layers):
    x = keras.layers.LayerNormalization()(
        x + keras.layers.MultiHeadAttention(heads, d // heads)(x, x, use_causal_mask=True))
    ffn = keras.layers.Dense(d)(keras.layers.Dense(f, activation="relu")(x))
    x = keras.layers.LayerNormalization()(x + ffn)
  model = keras.Model(tokens, keras.layers.Dense(vocab)(x))
  optimizer = keras.optimizers.Adam(1e-4)
  loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

  @tf.function(jit_compile=xla, input_signature=[tf.TensorSpec([None, None], tf.int32)])
  def step(seq):
    with tf.GradientTape() as tape:
      loss = loss_fn(seq, model(seq, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  seqs = [tf.concat([b["inputs"], b["targets"]], axis=1) for b in batches]
  flops = 0.0
  for seq in seqs[3:]:
    b, t = seq.shape
    flops += 3.0 * (layers * (2.0 * b * t * d * (4 * d + 2 * f) + 4.0 * b * t * t * d) +
                    2.0 * b * t * d * vocab)

  def run(part):
    for seq in part:
      loss = step(seq)
    float(loss)

  run(seqs[:3])
  run(seqs[3:])  # trace (and compile) every shape before timing

  return _seconds_of(lambda: run(seqs[3:])), flops


def run():
  tf, registry, problem, data_dir, hp, batches = _setup()
  timed = batches[3:]
  vocab = problem.get_hparams(hp).vocab_size["targets"]
  tokens = sum(float(tf.reduce_sum(tf.cast(b["inputs"] > 0, tf.float32)) +
                     tf.reduce_sum(tf.cast(b["targets"] > 0, tf.float32))) for b in timed)
  flops = 3.0 * sum(batch_flops(b["inputs"].shape, b["targets"].shape, hp, vocab)
                    for b in timed)
  peak = common.matmul_peak_flops(1024)
  rows = []
  # Best of ROUNDS passes, interleaved in every round, so that a busy spell on a shared machine
  # slows one pass of each rather than deciding a ratio. t2t_lite without XLA and model.fit
  # are timed first, before any XLA program exists in the process (XLA's CPU runtime keeps
  # threads of its own); then the XLA loop; then the plain Keras reference. The matmul peak
  # is measured in every round and the highest taken: one low reading (a busy moment) would
  # inflate every MFU.
  seconds = {}
  ref_flops = {}

  def reference(xla):
    runner, ref_flops[xla] = _reference_runner(tf, hp, batches, xla)
    return runner

  phases = [lambda: {False: _t2t_runner(tf, problem, data_dir, hp, batches, False),
                     "fit": _fit_runner(tf, registry, problem, hp, batches),
                     "no_dropout": _t2t_runner(tf, problem, data_dir, hp, batches, False,
                                               dropout=False)},
            lambda: {True: _t2t_runner(tf, problem, data_dir, hp, batches, True)},
            # Last, so that its programs cannot slow the loops above (in one run_all with the
            # reference timed alongside them, both t2t_lite loops lost 15%).
            lambda: {"ref": reference(False), "ref_xla": reference(True)}]
  for make_phase in phases:
    phase = make_phase()  # built (and traced or compiled) only when its turn comes
    for key in phase:
      seconds[key] = float("inf")
    for _ in range(ROUNDS):
      for key, runner in phase.items():
        seconds[key] = min(seconds[key], runner())
      peak = max(peak, common.matmul_peak_flops(1024))
  for xla in (False, True):
    mfu = flops / seconds[xla] / peak
    target = 0.65 if xla else 0.55
    rows.append(common.row(
        "transformer_small MFU, %s" % ("XLA" if xla else "no XLA"), 100 * mfu, "%",
        ">= %d" % (100 * target), mfu >= target,
        "%.0f tokens/s; %.2f GFLOP/step; peak matmul %.1f GFLOP/s; best of %d passes" % (
            tokens / seconds[xla], flops / len(timed) / 1e9, peak / 1e9, ROUNDS)))
  mfu = flops / seconds["no_dropout"] / peak
  rows.append(common.row(
      "transformer_small MFU, no XLA, dropout off", 100 * mfu, "%", "(printed)", True,
      "%.0f tokens/s, against %.0f with dropout: what dropout costs; compare with the plain "
      "Keras reference below, which has no dropout" % (tokens / seconds["no_dropout"],
                                                  tokens / seconds[False])))
  ref_mfu = {xla: ref_flops[xla] / seconds["ref_xla" if xla else "ref"] / peak
             for xla in (False, True)}
  rows.append(common.row(
      "reference: plain Keras decoder of the same size, bare tf.function, MFU", 100 * ref_mfu[False],
      "%", "(printed)", True,
      "no XLA %.1f%%, XLA %.1f%%: keras.layers.MultiHeadAttention + ReLU feed-forward, %d "
      "blocks, no dropout, inputs and targets joined, same batches and peak" % (
          100 * ref_mfu[False], 100 * ref_mfu[True], 2 * hp.num_hidden_layers)))
  fit_seconds = seconds["fit"]
  ratio = fit_seconds / seconds[False]
  rows.append(common.row("t2t_lite loop tokens/s / keras model.fit tokens/s", ratio, "ratio",
                         ">= 1.0", ratio >= 1.0,
                         "fit %.0f tokens/s, t2t_lite %.0f tokens/s, same %d batches, best of "
                         "%d interleaved passes each, no XLA" % (
                             tokens / fit_seconds, tokens / seconds[False], len(timed),
                             ROUNDS)))
  # The input pipeline must keep far ahead of the trainer: tokens/s that
  # dataset("train") delivers with the same batching, over what the loop above consumed.
  from benchmarks import input_pipeline  # pylint: disable=g-import-not-at-top
  pipe = input_pipeline.pipeline_tokens_per_second(PROBLEM, hp, data_dir, num_batches=200,
                                                   warmup_batches=20, seed=1)
  consumed = tokens / seconds[False]
  ratio_pipe = pipe["tokens_per_second"] / consumed
  rows.append(common.row("input pipeline tokens/s / trainer tokens/s (transformer_small)",
                         ratio_pipe, "ratio", ">= 20", ratio_pipe >= 20,
                         "pipeline %.0f tokens/s, trainer %.0f tokens/s" % (
                             pipe["tokens_per_second"], consumed)))
  rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
  rows.append(common.row("peak resident memory of this benchmark", rss_mb, "MiB", "(printed)",
                         True, "ru_maxrss"))
  return rows


if __name__ == "__main__":
  sys.exit(common.main(__doc__, run))
