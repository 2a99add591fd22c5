"""The helpers the benchmarks share: the timer (benchmarks/common.py) and the keras-hub peer's
cached decode (benchmarks/peer_seq2seq.py, run only where the `bench` extra is installed)."""
import numpy as np
import pytest

from benchmarks import common


def test_timed_returns_the_result_and_non_negative_times():
  t = common.timed(lambda: sum(range(1000)))
  assert t.result == sum(range(1000))
  assert t.seconds >= 0.0 and t.cpu_seconds >= 0.0


def test_best_times_runs_warmup_then_interleaved_rows_and_syncs_each_row():
  calls, synced = [], []

  def make(name):
    def fn():
      calls.append(name)
      return name
    return fn

  wall, cpu = common.best_times([make("a"), make("b")], repeats=3, warmup=2, inner=2,
                                sync=synced.append)
  assert len(wall) == len(cpu) == 2
  assert all(w >= 0.0 for w in wall) and all(c >= 0.0 for c in cpu)
  # Warm-up: each fn alone, twice; then 3 repetitions of 2 calls each, the fns in turn.
  assert calls == ["a", "a", "b", "b"] + ["a", "a", "b", "b"] * 3
  # sync sees each warm-up call and the last call of each timed row.
  assert synced == ["a", "a", "b", "b"] + ["a", "b"] * 3


def _peer(vocab_size=6, start_id=6):
  pytest.importorskip("keras_hub")
  import keras
  from benchmarks import peer_seq2seq
  keras.utils.set_random_seed(0)
  model, parts = peer_seq2seq.build_model(vocab_size, 16, layers=1, hidden_size=16,
                                          filter_size=32, num_heads=2, dropout=0.0,
                                          start_id=start_id)
  # Padding (id 0) never wins, so the full model (whose mask hides it) and the cache agree.
  bias = parts["logits"].bias
  bias.assign(bias.numpy() - 1e4 * (np.arange(vocab_size) == 0))
  return model, parts


def test_peer_cached_greedy_decode_matches_full_recomputation():
  model, parts = _peer()
  import tensorflow as tf
  from benchmarks import peer_seq2seq
  source = tf.constant(np.random.default_rng(0).integers(2, 6, [3, 5]), tf.int32)
  length = 7
  decode = peer_seq2seq.make_decode_fn(parts, 6, None, beam_size=1, jit_compile=False)
  ids = decode(source, tf.zeros([3, length], tf.int32)).numpy()
  assert ids.shape == (3, length) and (ids[:, 0] == 6).all()
  expected = np.full([3, 1], 6, np.int32)
  for _ in range(length - 1):
    logits = model({"inputs": source, "decoder_inputs": tf.constant(expected)}).numpy()
    expected = np.concatenate([expected, logits[:, -1].argmax(-1)[:, None]], 1)
  np.testing.assert_array_equal(ids, expected)


def test_peer_cached_beam_decode_keeps_its_shape_and_start():
  _, parts = _peer()
  import tensorflow as tf
  from benchmarks import peer_seq2seq
  source = tf.constant(np.random.default_rng(1).integers(2, 6, [2, 4]), tf.int32)
  decode = peer_seq2seq.make_decode_fn(parts, 6, 1, beam_size=3, jit_compile=False)
  ids = decode(source, tf.zeros([2, 6], tf.int32)).numpy()
  assert ids.shape == (2, 6) and (ids[:, 0] == 6).all()
  # After an end id (1) only padding follows.
  for row in ids:
    ends = np.flatnonzero(row == 1)
    if ends.size:
      assert (row[ends[0] + 1:] == 0).all()
