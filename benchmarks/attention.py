"""Speed of t2t_lite's MultiHeadSelfAttention against keras.layers.MultiHeadAttention.

    python -m benchmarks.attention   # one line per measurement; ~1.5 min on 2 idle cores
    T2T_BENCH_REPEATS=15 python -m benchmarks.attention    # more repetitions, steadier minima

Measured in one process, on the same inputs, TensorFlow backend on CPU:

* forward + backward (gradients w.r.t. the input and every weight) of one self-attention layer,
  t2t_lite vs Keras (same num_heads and key_dim, same weights via `load_keras_weights`), with
  and without jit_compile; the ratio is t2t time / Keras time (lower is better);
* at the large size, the FLOP/s of the t2t layer (its matmul FLOPs counted exactly) as a share
  of the FLOP/s of a plain matmul measured in the same process; its details also give the time
  of the layer's own matmuls run alone at their shapes (the batched per-head products, with an
  inner dimension of key_dim, run slower than the projection-sized matmul of the target);
* incremental decoding of 128 positions with the key/value cache vs recomputing the whole
  prefix at every step (the speed-up, higher is better).

Timings are the best of several interleaved repetitions after a warm-up, so that a busy machine
slows both sides alike and the minimum is the undisturbed time.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import common  # noqa: E402
from t2t_lite.layers import MultiHeadSelfAttention  # noqa: E402

# (batch, length, hidden, heads, target ratio)
TRAINING_SIZES = [(64, 64, 128, 4, 0.85), (16, 256, 512, 8, 1.0)]
FLOPS_SHARE_TARGET = 90.0
REPEATS = int(os.environ.get("T2T_BENCH_REPEATS", "7"))
DECODE = {"batch": 8, "length": 128, "hidden": 512, "heads": 8, "target": 5.0}


def _block(result):
  for t in tf.nest.flatten(result):
    t.numpy()


def _train_step(layer, call, jit):
  @tf.function(jit_compile=jit)
  def step(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = call(x)
      loss = tf.reduce_sum(tf.square(y))
    return tape.gradient(loss, [x] + layer.trainable_variables)
  return step


def attention_flops(batch, length, hidden, heads):
  """Matmul FLOPs of one forward pass of self-attention (key_dim = hidden // heads)."""
  projections = 2 * batch * length * hidden * (3 * hidden + hidden)
  attention = 2 * 2 * batch * length * length * hidden  # QK^T and PV over all heads
  return projections + attention


def _matmuls_alone_seconds(batch, length, hidden, heads, jit):
  """Seconds of the layer's forward + backward matmuls alone: the 12 products (each of the Q/K/V
  projection, Q K^T, P V and the output projection, with its two gradient products) at the
  layer's shapes, on random operands, in one tf.function; nothing else runs."""
  dim, bh, tokens = hidden // heads, batch * heads, batch * length

  def normal(*shape):
    return tf.random.normal(shape, seed=len(shape) + sum(shape))

  x, w_qkv, w_out = normal(tokens, hidden), normal(hidden, 3 * hidden), normal(hidden, hidden)
  g_qkv, g_out = normal(tokens, 3 * hidden), normal(tokens, hidden)
  q, k, v, g_ctx = (normal(bh, length, dim) for _ in range(4))
  probs, g_probs = normal(bh, length, length), normal(bh, length, length)

  @tf.function(jit_compile=jit)
  def run():
    products = []
    for a, w, g in ((x, w_qkv, g_qkv), (x, w_out, g_out)):  # y = a w: dA = g w^T, dW = a^T g
      products += [tf.matmul(a, w), tf.matmul(g, w, transpose_b=True),
                   tf.matmul(a, g, transpose_a=True)]
    products += [tf.matmul(q, k, transpose_b=True), tf.matmul(g_probs, k),  # logits, dQ
                 tf.matmul(g_probs, q, transpose_a=True),  # dK
                 tf.matmul(probs, v), tf.matmul(g_ctx, v, transpose_b=True),  # context, dP
                 tf.matmul(probs, g_ctx, transpose_a=True)]  # dV
    # One element of each; the products are computed in full all the same.
    return tf.add_n([tf.reshape(p, [-1])[0] for p in products])

  return common.best_times([lambda: run().numpy()], repeats=REPEATS, warmup=2)[0][0]


def _bench_training(results):
  for batch, length, hidden, heads, target in TRAINING_SIZES:
    x = tf.random.normal((batch, length, hidden), seed=1)
    ours = MultiHeadSelfAttention(heads)
    ours(x)
    theirs = keras.layers.MultiHeadAttention(heads, hidden // heads)
    theirs(x, x)
    ours.load_keras_weights(theirs)
    np.testing.assert_allclose(ours(x), theirs(x, x), atol=1e-4)
    size = "B=%d,T=%d,D=%d,H=%d" % (batch, length, hidden, heads)
    for jit in (False, True):
      steps = [_train_step(ours, ours, jit), _train_step(theirs, lambda v: theirs(v, v), jit)]
      (t_ours, t_keras), (c_ours, c_keras) = common.best_times(
          [lambda step=step: step(x) for step in steps], repeats=REPEATS, inner=3, sync=_block)
      ratio = t_ours / t_keras
      results.append({
          "name": "attention_fwd_bwd_ratio_%s_%s" % (size, "xla" if jit else "graph"),
          "value": round(ratio, 3), "unit": "ratio", "target": "<= %g" % target,
          "ok": ratio <= target,
          "details": "t2t %.2f ms vs keras %.2f ms per step (jit_compile=%s); CPU time "
                     "%.2f vs %.2f ms, ratio %.3f" % (t_ours * 1e3, t_keras * 1e3, jit,
                                                     c_ours * 1e3, c_keras * 1e3,
                                                     c_ours / c_keras)})
      if target == 1.0:
        flops = 3 * attention_flops(batch, length, hidden, heads)  # backward = 2x forward
        # The layer's own fused Q/K/V matmul shape, TensorFlow's kernel, no result fetched.
        matmul_rate = common.matmul_peak_flops(batch * length, k=hidden, m=3 * hidden,
                                               repeats=REPEATS)
        share = 100.0 * flops / t_ours / matmul_rate
        alone = _matmuls_alone_seconds(batch, length, hidden, heads, jit)
        results.append({
            "name": "attention_flops_share_%s_%s" % (size, "xla" if jit else "graph"),
            "value": round(share, 1), "unit": "%", "target": ">= %g" % FLOPS_SHARE_TARGET,
            "ok": share >= FLOPS_SHARE_TARGET,
            "details": "t2t fwd+bwd %.1f GFLOP/s (%.2f GFLOP in %.1f ms), plain matmul "
                       "[%d,%d]x[%d,%d] %.1f GFLOP/s; the layer's 12 matmuls alone take %.1f "
                       "ms (%.1f GFLOP/s), %.1f%% of the layer's time: with no other work "
                       "at all the share would be %.1f%%" % (
                           flops / t_ours / 1e9, flops / 1e9, t_ours * 1e3, batch * length,
                           hidden, hidden, 3 * hidden, matmul_rate / 1e9, alone * 1e3,
                           flops / alone / 1e9, 100.0 * alone / t_ours,
                           100.0 * flops / alone / matmul_rate)})


def _bench_decoding(results):
  batch, length, hidden, heads = (DECODE[k] for k in ("batch", "length", "hidden", "heads"))
  layer = MultiHeadSelfAttention(heads)
  x = tf.random.normal((batch, length, hidden), seed=4)
  layer(x)

  # Both decoders run all positions in one tf.function (a tf.while_loop, as a real decoder
  # does), so that per-call Python overhead does not hide the work each step does.
  @tf.function
  def decode_cached(x):
    cache = layer.init_cache(batch, length)
    outs = tf.TensorArray(x.dtype, size=length)
    for i in tf.range(length):
      # x[:, i:i + 1] would lose the static length 1 that a real decoder's step input has.
      step = tf.expand_dims(x[:, i], 1)
      out, cache = layer(step, use_causal_mask=True, cache=cache, cache_index=i)
      outs = outs.write(i, out[:, 0])
    return tf.transpose(outs.stack(), (1, 0, 2))

  @tf.function
  def decode_recompute(x):
    outs = tf.TensorArray(x.dtype, size=length)
    for i in tf.range(length):
      out = layer(x[:, :i + 1], use_causal_mask=True)  # the whole prefix again
      outs = outs.write(i, out[:, -1])
    return tf.transpose(outs.stack(), (1, 0, 2))

  # The first calls trace (the warm-up) and check that both decode alike.
  np.testing.assert_allclose(decode_cached(x), decode_recompute(x), atol=1e-4)
  (t_cached, t_recompute), (c_cached, c_recompute) = common.best_times(
      [lambda: decode_cached(x), lambda: decode_recompute(x)], repeats=3, warmup=0,
      sync=_block)
  speedup = t_recompute / t_cached
  results.append({
      "name": "attention_cached_decoding_speedup",
      "value": round(speedup, 2), "unit": "ratio", "target": ">= %g" % DECODE["target"],
      "ok": speedup >= DECODE["target"],
      "details": ("%d positions, B=%d, D=%d, H=%d, in one tf.function each: cache %.1f ms vs "
                  "recompute prefix %.1f ms; by CPU time %.2fx") % (
                      length, batch, hidden, heads, t_cached * 1e3, t_recompute * 1e3,
                      c_recompute / c_cached)})


def run():
  """Runs every measurement; returns a list of {name, value, unit, target, ok, details}."""
  keras.utils.set_random_seed(0)
  results = []
  _bench_training(results)
  _bench_decoding(results)
  return results


if __name__ == "__main__":
  sys.exit(common.main(__doc__, run))
