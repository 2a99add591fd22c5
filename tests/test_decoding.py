"""Cached greedy and beam search (t2t_lite.decoding) on tiny randomly initialized Transformers.

The reference is always the model itself run on the whole prefix (teacher forcing), so these
tests check the cache, the search and the scores against plain recomputation.
"""
import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

import t2t_lite.models  # noqa: F401  (registers the transformer)
from t2t_lite import constants
from t2t_lite import decoding
from t2t_lite import registry
from t2t_lite.data import text_encoder
from t2t_lite.decoding import export as export_lib
from t2t_lite.decoding import search
from t2t_lite.layers import dense as dense_lib
from t2t_lite.errors import HParamsError, T2TUserError
from t2t_lite.hparams import HParams

EOS = constants.EOS_ID


def tiny_transformer(vocab_size, has_inputs=True, seed=0, eos_bias=-1.0, hidden_size=16,
                     filter_size=32):
  """A 2-layer, 16-wide Transformer with random weights scaled up so that its decodes vary
  with the input and end with EOS at various lengths (a fresh init predicts nearly uniform
  distributions that ignore the input)."""
  keras.utils.set_random_seed(seed)
  hp = registry.hparams("transformer_tiny")
  hp.hidden_size, hp.filter_size, hp.num_heads, hp.num_hidden_layers = (
      hidden_size, filter_size, 2, 2)
  hp.shared_embedding_and_softmax_weights = False
  features = ("inputs", "targets") if has_inputs else ("targets",)
  php = HParams(vocab_size={f: vocab_size for f in features},
                modality={f: "symbol" for f in features}, has_inputs=has_inputs)
  model = registry.model("transformer")(hp, php)
  dummy = np.ones([1, 3], np.int32)
  model({f: dummy for f in features}, training=False)
  for w in model.weights:
    if w.path.endswith("kernel") or "embeddings" in w.path:
      w.assign(w * 2.5)
  bias = np.zeros([vocab_size], np.float32)
  bias[0], bias[EOS] = -4.0, eos_bias  # rarely padding; EOS now and then
  model.output_projection.bias.assign(bias)
  return model


def calibrate_eos(model, rows, extra_length=6):
  """Raises the EOS bias step by step until greedy decodes of `rows` vary: some end with
  EOS after other tokens and not all are alike (so the tests do not hang on the luck of an
  initialization)."""
  decode = tf.function(lambda x: decoding.decode_ids(
      model, x, beam_size=1, extra_length=extra_length)["outputs"][:, 0])
  bias = keras.ops.convert_to_numpy(model.output_projection.bias).copy()
  for eos_bias in np.arange(-3.0, 4.01, 0.25):
    bias[EOS] = eos_bias
    model.output_projection.bias.assign(bias)
    out = decode(pad(rows)).numpy()
    hyps = [until_eos(o[:len(r) + extra_length]) for o, r in zip(out, rows)]
    if (any(h[-1] == EOS and len(h) > 1 for h in hyps) and
        len({tuple(h) for h in hyps}) > 1):
      return model
  raise AssertionError("no EOS bias gives varied decodes; change the seed")


@pytest.fixture(scope="module")
def seq2seq():
  return calibrate_eos(tiny_transformer(8, seed=3), INPUTS)


@pytest.fixture(scope="module")
def language_model():
  return tiny_transformer(8, has_inputs=False, seed=5)


def pad(rows):
  width = max(len(r) for r in rows)
  return np.array([list(r) + [0] * (width - len(r)) for r in rows], np.int32)


INPUTS = [[3, 4, 5, 2, 1], [2, 3, 1], [7, 7, 6, 1], [5, 1]]


def full_recompute_greedy(model, rows, extra_length):
  """Greedy decoding that runs the whole model on the prefix at every step (no cache)."""
  batch = pad(rows)
  limits = [len(r) + extra_length for r in rows]
  outputs = [[] for _ in rows]
  done = [False] * len(rows)
  for i in range(max(limits)):
    if all(done):
      break
    targets = pad([o + [0] for o in outputs])  # the last position is only read shifted away
    if model.has_inputs:
      logits = model({"inputs": batch, "targets": targets}, training=False)
    else:
      logits = model({"targets": targets}, training=False)
    logits = keras.ops.convert_to_numpy(logits)
    for row in range(len(rows)):
      if done[row]:
        continue
      token = int(np.argmax(logits[row, i]))
      outputs[row].append(token)
      done[row] = token == EOS or len(outputs[row]) >= limits[row]
  return outputs


def full_recompute_prompt_greedy(model, prompt, extra_length):
  """Greedy continuation of one prompt by a decoder-only model, without a cache."""
  seq = list(prompt)
  while len(seq) < len(prompt) + extra_length:
    logits = model({"targets": np.array([seq + [0]], np.int32)}, training=False)
    token = int(np.argmax(keras.ops.convert_to_numpy(logits)[0, len(seq)]))
    seq.append(token)
    if token == EOS:
      break
  return seq[len(prompt):]


def sequence_log_prob(model, inputs, hypothesis):
  """log p(hypothesis | inputs) by teacher forcing (hypothesis includes its EOS, if any)."""
  features = {"targets": np.array([hypothesis], np.int32)}
  if model.has_inputs:
    features["inputs"] = np.array([inputs], np.int32)
  logits = keras.ops.convert_to_numpy(model(features, training=False))[0]
  log_probs = logits - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1,
                                     keepdims=True)) - logits.max(-1, keepdims=True)
  return float(sum(log_probs[t, token] for t, token in enumerate(hypothesis)))


def until_eos(ids):
  ids = [int(i) for i in ids]
  return ids[:ids.index(EOS) + 1] if EOS in ids else ids


def test_cached_greedy_equals_full_recomputation(seq2seq):
  extra = 6
  expected = full_recompute_greedy(seq2seq, INPUTS, extra)
  result = decoding.decode_ids(seq2seq, pad(INPUTS), beam_size=1, extra_length=extra)
  got = [until_eos(row[0][:len(INPUTS[i]) + extra])
         for i, row in enumerate(result["outputs"].numpy())]
  assert got == expected
  # Real variety (see calibrate_eos): some rows end with EOS, not all alike.
  assert any(EOS in e for e in expected) and len({tuple(e) for e in expected}) > 1
  # The greedy score is the sum of the chosen tokens' log-probabilities.
  for index, (row, ids) in enumerate(zip(INPUTS, expected)):
    assert result["scores"].numpy()[index, 0] == pytest.approx(
        sequence_log_prob(seq2seq, row, ids), abs=1e-4)


def test_decoder_only_model_continues_a_prompt(language_model):
  prompts = [[3, 4, 5], [6], [2, 7, 7, 3, 5]]
  extra = 5
  decoder = decoding.Decoder(language_model, decoding.decode_hparams(
      "beam_size=1,extra_length=%d" % extra))
  got = decoder.decode(prompts)
  expected = [full_recompute_prompt_greedy(language_model, p, extra) for p in prompts]
  assert [beams[0] for beams in got] == [[t for t in e if t != EOS] for e in expected]
  raw = decoding.decode_ids(language_model, pad(prompts), beam_size=3, extra_length=extra)
  outputs = raw["outputs"].numpy()
  np.testing.assert_array_equal(raw["prefix_length"].numpy(), [3, 1, 5])
  for row, prompt in enumerate(prompts):  # every beam starts with its prompt
    for beam in outputs[row]:
      assert list(beam[:len(prompt)]) == prompt
  assert np.all(np.diff(raw["scores"].numpy(), axis=1) <= 1e-6)


def test_beam_size_1_is_greedy(seq2seq):
  inputs = pad(INPUTS)
  batch = len(INPUTS)
  lengths = tf.constant([len(r) + 6 for r in INPUTS])
  length = inputs.shape[1] + 6

  def run(beam):
    enc, mask = seq2seq.encode(inputs)
    cache = seq2seq.init_decode_cache(batch, length, enc, mask)
    if beam:
      ids, _ = search.beam_search(seq2seq.decode_step, batch, length, cache, beam_size=1,
                                  alpha=0.6, max_lengths=lengths)
      return ids[:, 0].numpy()
    ids, _ = search.greedy_search(seq2seq.decode_step, batch, length, cache,
                                  max_lengths=lengths)
    return ids.numpy()

  np.testing.assert_array_equal(run(True), run(False))


def test_beam_search_sorts_scores_them_right_and_stops_at_eos(seq2seq):
  alpha, extra, k = 0.6, 6, 4
  result = decoding.decode_ids(seq2seq, pad(INPUTS), beam_size=k, alpha=alpha,
                               extra_length=extra)
  outputs, scores = result["outputs"].numpy(), result["scores"].numpy()
  assert outputs.shape[:2] == (len(INPUTS), k)
  assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
  ended_with_eos = 0
  for row, inputs in enumerate(INPUTS):
    hypotheses = set()
    for beam in range(k):
      ids = [int(t) for t in outputs[row, beam]]
      hyp = until_eos(ids[:len(inputs) + extra])
      assert all(t == 0 for t in ids[len(hyp):])  # nothing after EOS or the limit
      if hyp[-1] == EOS:
        ended_with_eos += 1
        assert EOS not in hyp[:-1]
      else:
        assert len(hyp) == len(inputs) + extra  # cut off only at the row's limit
      hypotheses.add(tuple(hyp))
      penalty = ((5.0 + len(hyp)) / 6.0) ** alpha
      assert scores[row, beam] == pytest.approx(
          sequence_log_prob(seq2seq, inputs, hyp) / penalty, abs=1e-4)
    assert len(hypotheses) == k  # distinct hypotheses
  assert ended_with_eos > 0


def test_wide_beam_finds_the_best_hypothesis():
  """With beam_size >= vocab ** (length - 1) nothing is pruned: the best beam is the exact
  optimum over every hypothesis (ending in EOS, or cut off at the length limit)."""
  model = tiny_transformer(4, seed=11, eos_bias=0.0)
  inputs, extra, alpha = [3, 2, 1], 1, 0.6
  limit = len(inputs) + extra  # 4 positions
  result = decoding.decode_ids(model, pad([inputs]), beam_size=4 ** (limit - 1), alpha=alpha,
                               extra_length=extra)
  non_eos = [0, 2, 3]
  candidates = [list(p) + [EOS] for n in range(limit) for p in itertools.product(non_eos,
                                                                                 repeat=n)]
  candidates += [list(p) for p in itertools.product(non_eos, repeat=limit)]
  targets = pad(candidates)
  logits = keras.ops.convert_to_numpy(model(
      {"inputs": np.tile(pad([inputs]), [len(candidates), 1]), "targets": targets},
      training=False))
  log_probs = tf.nn.log_softmax(logits).numpy()
  scores = [sum(log_probs[c, t, tok] for t, tok in enumerate(hyp)) /
            ((5.0 + len(hyp)) / 6.0) ** alpha for c, hyp in enumerate(candidates)]
  best = candidates[int(np.argmax(scores))]
  assert until_eos(result["outputs"].numpy()[0, 0]) == best
  assert result["scores"].numpy()[0, 0] == pytest.approx(max(scores), abs=1e-4)


@pytest.mark.parametrize("overrides", ["beam_size=1", "beam_size=3,alpha=1.0"])
def test_batch_decoding_equals_one_at_a_time(seq2seq, overrides):
  decoder = decoding.Decoder(seq2seq, decoding.decode_hparams(overrides + ",extra_length=6"))
  together = decoder.decode_with_scores(INPUTS)
  for inputs, (beams, scores) in zip(INPUTS, together):
    alone_beams, alone_scores = decoder.decode_with_scores([inputs])[0]
    assert beams == alone_beams
    np.testing.assert_allclose(scores, alone_scores, atol=1e-5)


def test_xla_compiled_search_gives_the_same_decodes(seq2seq):
  plain = decoding.Decoder(seq2seq, decoding.decode_hparams("beam_size=2,extra_length=4"))
  xla = decoding.Decoder(seq2seq, decoding.decode_hparams(
      "beam_size=2,extra_length=4,xla=true"))
  a, b = plain.decode_batch(pad(INPUTS)), xla.decode_batch(pad(INPUTS))
  np.testing.assert_array_equal(a["outputs"], b["outputs"])
  np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-4)


def test_sharded_xla_decoding_gives_the_same_decodes(seq2seq):
  # shards=3, but a shard needs 8 rows at least: 19 rows make 2 shards of 10, the second
  # padded with an empty row that is dropped.
  rows = (INPUTS * 5)[:19]
  one = decoding.Decoder(seq2seq, decoding.decode_hparams(
      "beam_size=2,extra_length=4,xla=true,shards=1"))
  split = decoding.Decoder(seq2seq, decoding.decode_hparams(
      "beam_size=2,extra_length=4,xla=true,shards=3"))
  assert (one.max_shards, split.max_shards) == (1, 3)
  calls = []
  original = split._sharded_run  # pylint: disable=protected-access

  def counting(num_shards):
    calls.append(num_shards)
    return original(num_shards)

  split._sharded_run = counting  # pylint: disable=protected-access
  a, b = one.decode_batch(pad(rows)), split.decode_batch(pad(rows))
  assert calls == [2]
  assert b["outputs"].shape == a["outputs"].shape
  np.testing.assert_array_equal(a["outputs"], b["outputs"])
  np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-4)
  assert split.decode(INPUTS) == one.decode(INPUTS)  # 4 rows: too few to split
  assert calls == [2]
  # Without XLA a batch is never split; 0 means one shard per core (1 with a GPU).
  assert decoding.Decoder(seq2seq, decoding.decode_hparams("shards=4")).max_shards == 1
  auto = decoding.Decoder(seq2seq, decoding.decode_hparams("xla=true")).max_shards
  assert auto == decoding.decoder.auto_shards() >= 1


def test_matmul_blocks_decode_the_same(monkeypatch):
  # 64 wide with a filter of 128: the fused Q/K/V and feed-forward projections of a step can
  # be cut into 2 blocks of at least 64 columns (16-wide models are too narrow to cut).
  model = calibrate_eos(tiny_transformer(8, seed=4, hidden_size=64, filter_size=128), INPUTS)
  cut = []
  original = dense_lib.column_parallel

  def recording(layers, parts, min_width=64):
    cut.append(parts)
    return original(layers, parts, min_width)

  monkeypatch.setattr(dense_lib, "column_parallel", recording)
  whole, blocks = (decoding.Decoder(model, decoding.decode_hparams(
      "beam_size=%d,extra_length=4,xla=true,shards=1,matmul_blocks=%d" % (beam, parts)))
                   for beam, parts in ((2, 1), (2, 2)))
  a, b = whole.decode_batch(pad(INPUTS)), blocks.decode_batch(pad(INPUTS))
  assert cut == [1, 2]
  np.testing.assert_array_equal(a["outputs"], b["outputs"])
  np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-4)
  greedy = decoding.Decoder(model, decoding.decode_hparams(
      "beam_size=1,extra_length=4,xla=true,shards=1,matmul_blocks=2"))
  reference = decoding.Decoder(model, decoding.decode_hparams("beam_size=1,extra_length=4"))
  np.testing.assert_array_equal(greedy.decode_batch(pad(INPUTS))["outputs"],
                                reference.decode_batch(pad(INPUTS))["outputs"])
  # Without XLA there are no blocks; 0 means one per core (1 with a GPU).
  assert cut[-2:] == [2, 1]
  decoding.Decoder(model, decoding.decode_hparams("xla=true")).decode_batch(pad(INPUTS[:1]))
  assert cut[-1] == decoding.decoder.auto_matmul_blocks() >= 1


def test_decode_hparams_defaults_and_errors():
  hp = decoding.decode_hparams()
  assert (hp.beam_size, hp.alpha, hp.extra_length, hp.return_beams) == (4, 0.6, 50, False)
  hp = decoding.decode_hparams("beam_size=2, alpha=0.0, return_beams=true")
  assert (hp.beam_size, hp.alpha, hp.return_beams) == (2, 0.0, True)
  assert hp.shards == 0
  assert hp.matmul_blocks == 0
  for bad in ["beam_size=two", "beam_width=4", "beam_size=0", "alpha=", "extra_length=0",
              "shards=-1", "matmul_blocks=-1"]:
    with pytest.raises(HParamsError, match="decode_hparams"):
      decoding.decode_hparams(bad)
  assert issubclass(HParamsError, T2TUserError)


def test_length_penalty_is_tensor2tensors():
  for length, alpha in [(1, 0.6), (10, 0.6), (7, 0.0), (3, 1.0)]:
    assert float(search.length_penalty(length, alpha)) == pytest.approx(
        ((5.0 + length) / 6.0) ** alpha)


def test_strip_ids_and_sequence_metrics():
  assert decoding.strip_ids([4, 0, 3, 1, 5, 0]) == [4, 3]
  assert decoding.strip_ids([9, 9, 4, 1], prefix_length=2) == [4]
  metrics = decoding.sequence_metrics([[2, 3], [2, 2, 3], []], [[2, 3], [2, 3], [4]])
  assert metrics["accuracy_per_sequence"] == pytest.approx(1 / 3)
  # Targets with EOS: [2 3 EOS], [2 3 EOS], [4 EOS] -> 3 + 1 + 0 right of 8.
  assert metrics["accuracy"] == pytest.approx(4 / 8)


# --- in-graph encoders of the string SavedModel -------------------------------------------

def _round_trip(encoder, lines):
  codec = export_lib.InGraphCodec(encoder, "inputs")
  ids = codec.encode(tf.constant(lines))
  assert ids.to_list() == [encoder.encode(line) for line in lines]
  texts = codec.decode(ids).numpy().tolist()
  return [t.decode("utf-8") for t in texts]


def test_in_graph_encoders_match_the_python_ones():
  symbols = text_encoder.SymbolEncoder(3, ["0", "1", "+"])
  assert _round_trip(symbols, ["1 0 + 1", "", "  0  "]) == ["1 0 + 1", "", "0"]
  tokens = text_encoder.TokenTextEncoder(vocab_list=["the", "cat", "<UNK>"],
                                         replace_oov="<UNK>")
  codec = export_lib.InGraphCodec(tokens, "inputs")
  assert codec.encode(tf.constant(["the dog cat"])).to_list() == [tokens.encode("the dog cat")]
  assert _round_trip(text_encoder.TextEncoder(), ["3 0 12"]) == ["3 0 12"]
  assert _round_trip(text_encoder.ByteTextEncoder(), ["héllo ✓", ""]) == ["héllo ✓", ""]


def test_unknown_symbol_fails_the_request_and_odd_encoders_are_refused():
  codec = export_lib.InGraphCodec(text_encoder.SymbolEncoder(2), "inputs")
  with pytest.raises(tf.errors.InvalidArgumentError, match="unknown token"):
    codec.encode(tf.constant(["1 7"]))

  class Reversing(text_encoder.TextEncoder):
    def encode(self, s):
      return super().encode(s)[::-1]

  with pytest.raises(decoding.ExportNotSupportedError, match="cannot be expressed"):
    export_lib.InGraphCodec(Reversing(), "inputs")
  assert issubclass(decoding.ExportNotSupportedError, T2TUserError)


def test_a_model_without_a_cache_is_refused():
  class NoCache(keras.Model):
    has_inputs = True

  with pytest.raises(T2TUserError, match="decode_step"):
    decoding.Decoder(NoCache())



def test_beam_search_does_not_stop_on_improbable_early_eos():
  """With a small vocabulary an improbable EOS extension is always among the top K; the search
  must keep going until no alive beam can beat the finished ones (tensor2tensor's rule)."""
  import numpy as np  # pylint: disable=g-import-not-at-top,reimported
  import tensorflow as tf  # pylint: disable=g-import-not-at-top,reimported
  from t2t_lite.decoding import search  # pylint: disable=g-import-not-at-top

  # Vocabulary {0 pad, 1 EOS, 2, 3}: token 2 is near-certain for 6 positions, then EOS is;
  # by then K improbable early-EOS hypotheses have finished.
  def step_fn(ids, cache, index):
    rows = tf.shape(ids)[0]
    early = tf.constant([-30.0, -8.0, 0.0, -8.0])
    late = tf.constant([-30.0, 0.0, -8.0, -8.0])
    logits = tf.where(index < 6, early, late)
    return tf.tile(logits[None, :], [rows, 1]), cache

  cache = {"dummy": tf.zeros([2, 1])}
  seqs, scores = search.beam_search(step_fn, 2, 10, cache, beam_size=4, alpha=0.6)
  best = seqs.numpy()[:, 0, :7]
  np.testing.assert_array_equal(best, [[2, 2, 2, 2, 2, 2, 1]] * 2)
  assert np.all(np.diff(scores.numpy(), axis=1) <= 0)  # best first


def test_beam_search_early_stop_ends_rows_sooner_with_the_same_best_hypothesis():
  """early_stop=True settles a row once its alive beams score no better at the current length;
  tensor2tensor's exact bound (early_stop=False) keeps extending them towards the limit."""
  import numpy as np  # pylint: disable=g-import-not-at-top,reimported
  import tensorflow as tf  # pylint: disable=g-import-not-at-top,reimported
  from t2t_lite.decoding import search  # pylint: disable=g-import-not-at-top

  steps = []

  # Vocabulary {0 pad, 1 EOS, 2, 3}: token 2 for 3 positions, then EOS is the likeliest; a beam
  # that goes on loses 1.5 a step.
  def step_fn(ids, cache, index):
    steps.append(1)
    rows = tf.shape(ids)[0]
    early = tf.constant([-30.0, -3.0, 0.0, -3.0])
    late = tf.constant([-30.0, -0.1, -1.5, -1.5])
    logits = tf.where(index < 3, early, late)
    return tf.tile(logits[None, :], [rows, 1]), cache

  cache = {"dummy": tf.zeros([2, 1])}
  results = {}
  for early_stop in (True, False):
    del steps[:]
    seqs, scores = search.beam_search(step_fn, 2, 40, cache, beam_size=2, alpha=0.6,
                                      early_stop=early_stop)
    results[early_stop] = (seqs.numpy()[:, 0, :4], scores.numpy()[:, 0], len(steps))
  for early_stop in (True, False):
    np.testing.assert_array_equal(results[early_stop][0], [[2, 2, 2, 1]] * 2)
  np.testing.assert_allclose(results[True][1], results[False][1])
  assert results[True][2] < results[False][2] < 40


def _row_stop_step_fn(stops, seen, grows, vocab=6):
  """A step function over a cache {"history": the ids fed so far, "memory_kv": [N] row ids
  (static)} whose row r prefers token 2 + (r + index) % 3 (the history's sum tips the choice
  to token 5 now and then, so a history reordered or kept wrongly changes the decodes) and
  EOS from index stops[r] on. The history grows ([N, index]) or is preallocated and written
  in place. Records (rows, history length) of each step in `seen`."""
  stops = tf.constant(stops, tf.int32)

  def step_fn(ids, cache, index):
    history, row = cache["history"], cache["memory_kv"]
    seen.append((int(ids.shape[0]), int(history.shape[1])))
    written = history if grows else history[:, :index]
    preferred = 2 + (row + index) % 3
    tip = tf.cast(tf.reduce_sum(written, axis=1) % 2, tf.float32)
    logits = (3.0 * tf.one_hot(preferred, vocab) + tip[:, None] * tf.one_hot(5, vocab) * 2.5 +
              6.0 * tf.one_hot(tf.fill(tf.shape(row), EOS), vocab) *
              tf.cast(index >= tf.gather(stops, row), tf.float32)[:, None])
    if grows:
      history = tf.concat([history, ids[:, None]], axis=1)
    else:
      history += ids[:, None] * tf.one_hot(index, history.shape[1], dtype=tf.int32)
    return logits, dict(cache, history=history)

  return step_fn


@pytest.mark.parametrize("beam_size", [1, 3])
def test_dynamic_search_drops_finished_rows_and_grows_the_cache(beam_size):
  # Eagerly (the body runs in Python, so each step's shapes can be recorded): rows end at
  # steps 2, 5, 1 and 3 (the third cut off by its limit of 1) and leave the state one by one;
  # the history axis, of size 0 at the start, grows by one per step. Without `dynamic` every
  # step sees all rows and the decodes, scores included, are the same.
  stops, limits, length = [1, 4, 6, 2], [8, 8, 1, 8], 8
  results, seen = {}, {}
  for dynamic in (False, True):
    seen[dynamic] = []
    step_fn = _row_stop_step_fn(stops, seen[dynamic], grows=dynamic)
    cache = {"history": tf.zeros([4, 0 if dynamic else length], tf.int32),
             "memory_kv": tf.range(4)}
    args = (step_fn, 4, length, cache)
    kwargs = dict(max_lengths=tf.constant(limits), dynamic=dynamic)
    if beam_size == 1:
      ids, scores = search.greedy_search(*args, **kwargs)
    else:
      ids, scores = search.beam_search(*args, beam_size=beam_size, alpha=0.6, **kwargs)
    results[dynamic] = (ids.numpy(), scores.numpy())
  np.testing.assert_array_equal(results[True][0], results[False][0])
  np.testing.assert_allclose(results[True][1], results[False][1], atol=1e-6)
  k = beam_size
  assert [rows for rows, _ in seen[False]] == [4 * k] * len(seen[False])
  rows = [n // k for n, _ in seen[True]]
  assert rows[0] == 4 and rows == sorted(rows, reverse=True) and rows[-1] < 4
  assert [size for _, size in seen[True]] == list(range(len(seen[True])))
  # Each row's best decode: its preferred tokens, then EOS at its stop (the third cut off).
  best = results[True][0] if k == 1 else results[True][0][:, 0]
  decodes = [[int(t) for t in row if t] for row in best]  # without the padding
  assert [d[-1] == EOS for d in decodes] == [True, True, False, True]
  assert [len(d) for d in decodes] == [2, 5, 1, 3]


@pytest.mark.parametrize("rows", [INPUTS, INPUTS[:1], INPUTS + [[6, 5, 4, 3, 2, 7, 1]]])
def test_encoding_inputs_two_to_a_row_equals_encoding_them_one_to_a_row(seq2seq, rows):
  # An even batch, one input, an odd batch (paired with an empty row): the encoder outputs
  # at the real tokens and the mask are those of the plain encoder; zeros at the padding.
  inputs = pad(rows)
  lengths = tf.constant([len(r) for r in rows], tf.int32)
  want, want_mask = seq2seq.encode(inputs)
  got, got_mask = tf.function(decoding.decoder.encode_in_pairs)(
      seq2seq, tf.constant(inputs), lengths)
  mask = want_mask.numpy()
  np.testing.assert_array_equal(got_mask.numpy(), mask)
  assert got.shape == want.shape
  np.testing.assert_allclose(got.numpy() * mask[..., None], want.numpy() * mask[..., None],
                             atol=1e-5)
  assert not np.any(got.numpy()[~mask])


@pytest.mark.parametrize("dynamic", [False, True])
def test_beams_sharing_the_encoder_rows_decode_as_beams_reading_copies(seq2seq, dynamic):
  # shared_cache_keys: the step function reads the encoder's keys, values and mask with one
  # row per input (never tiled to the beams, and with `dynamic` dropped by input as rows
  # finish), and beam search returns what it returns over beam_size copies of them.
  inputs, batch, k = pad(INPUTS), len(INPUTS), 3
  lengths = tf.constant([len(r) + 6 for r in INPUTS])
  length = inputs.shape[1] + 6
  seen = []

  def step_fn(ids, cache, index):
    seen.append((int(ids.shape[0]), int(cache["memory_mask"].shape[0]),
                 int(cache["memory_kv"][0]["key"].shape[0])))
    return seq2seq.decode_step(ids, cache, index, cache_grows=dynamic)

  results = {}
  for shared in ((), seq2seq.beam_shared_cache_keys):
    del seen[:]
    enc, mask = seq2seq.encode(inputs)
    cache = seq2seq.init_decode_cache(batch, None if dynamic else length, enc, mask)
    ids, scores = search.beam_search(step_fn, batch, length, cache, beam_size=k, alpha=0.6,
                                     max_lengths=lengths, dynamic=dynamic,
                                     shared_cache_keys=shared)
    results[shared] = (ids.numpy(), scores.numpy())
    if shared:
      assert all(rows == k * mask_rows and mask_rows == kv_rows
                 for rows, mask_rows, kv_rows in seen), seen
      assert seen[0][1] == batch and (seen[-1][1] < batch) == dynamic
    else:
      assert all(rows == mask_rows == kv_rows for rows, mask_rows, kv_rows in seen), seen
  np.testing.assert_array_equal(results[()][0], results[seq2seq.beam_shared_cache_keys][0])
  np.testing.assert_allclose(results[()][1], results[seq2seq.beam_shared_cache_keys][1],
                             atol=1e-5)
  assert len({tuple(until_eos(row[0])) for row in results[()][0]}) > 1  # varied decodes


@pytest.mark.parametrize("beam_size", [1, 3])
@pytest.mark.parametrize("model_name", ["seq2seq", "language_model"])
def test_dynamic_decoding_in_a_graph_equals_the_static_one(request, model_name, beam_size):
  # In a tf.function (the export's mode): rows of mixed lengths leave as they finish and
  # the self-attention cache grows; the decodes and scores are those of the preallocated,
  # fixed-shape search.
  model = request.getfixturevalue(model_name)
  if model.has_inputs:
    rows = INPUTS + [[6, 5, 4, 3, 2, 7, 1], [4, 1]]
  else:
    rows = [[3, 4, 5], [6], [2, 7, 7, 3, 5], [4, 4]]
  decode = tf.function(lambda x, dynamic: decoding.decode_ids(
      model, x, beam_size=beam_size, extra_length=6, dynamic=dynamic))
  static, dynamic = decode(pad(rows), False), decode(pad(rows), True)
  for name in ("outputs", "prefix_length"):
    np.testing.assert_array_equal(dynamic[name].numpy(), static[name].numpy())
  np.testing.assert_allclose(dynamic["scores"].numpy(), static["scores"].numpy(), atol=1e-5)
  lengths = {len([t for t in until_eos(row[0]) if t]) for row in static["outputs"].numpy()}
  assert len(lengths) > 1  # rows end at different steps (EOS or their limits)
