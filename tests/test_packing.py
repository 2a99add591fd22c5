"""Packed training rows (t2t_lite/data/packing.py): layout, hparams, loss, training."""
import collections
import os

import numpy as np
import pytest
import tensorflow as tf

import problems  # noqa: F401
from t2t_lite import errors
from t2t_lite import registry
from t2t_lite.constants import ModeKeys
from t2t_lite.data import packing
from t2t_lite.data.problem import Problem
from t2t_lite.hparams import HParams
from t2t_lite.models import base
from t2t_lite.models import losses
from t2t_lite.training import Trainer

ROW = 16


def make_examples(count=60, seed=0, longest=20, inputs=True):
  """Examples of distinct tokens (example k's ids all lie in its own range), some too long."""
  rng = np.random.default_rng(seed)
  out = []
  for k in range(count):
    ex = {"targets": (1000 * (k + 1) + np.arange(int(rng.integers(1, longest)))).tolist()}
    if inputs:
      ex["inputs"] = (1000 * (k + 1) + 500 + np.arange(int(rng.integers(1, longest)))).tolist()
    out.append(ex)
  return out


def as_dataset(examples):
  def gen():
    for ex in examples:
      yield {k: np.array(v, np.int32) for k, v in ex.items()}
  spec = {k: tf.TensorSpec([None], tf.int32) for k in examples[0]}
  return tf.data.Dataset.from_generator(gen, output_signature=spec)


def unpack(rows, length=ROW):
  """The examples of packed rows (checking each row's layout on the way), in row order."""
  found = []
  features = [f for f in ("inputs", "targets") if f in rows[0]]
  for row in rows:
    per_feature = {}
    for f in features:
      ids, seg, pos = (np.asarray(row[f + s]) for s in ("", "_segmentation", "_position"))
      assert ids.shape == seg.shape == pos.shape == (length,)
      used = int((seg > 0).sum())
      # Segments 1, 2, ... in order, one contiguous run each, then only padding.
      assert (seg[:used] > 0).all() and (seg[used:] == 0).all()
      assert (ids[used:] == 0).all() and (pos[used:] == 0).all() and (ids[:used] != 0).all()
      assert (np.diff(seg[:used]) >= 0).all() and (np.diff(seg[:used]) <= 1).all()
      assert used == 0 or seg[0] == 1
      parts = {}
      for s in range(1, int(seg.max()) + 1 if used else 1):
        where = np.nonzero(seg == s)[0]
        np.testing.assert_array_equal(pos[where], np.arange(len(where)))
        parts[s] = ids[where].tolist()
      per_feature[f] = parts
    segments = set(per_feature["targets"])
    for f in features:
      assert set(per_feature[f]) == segments  # segment k is example k on both sides
    for s in sorted(segments):
      found.append({f: per_feature[f][s] for f in features})
  return found


def key(ex):
  return tuple(tuple(ex[f]) for f in sorted(ex))


@pytest.mark.parametrize("inputs", [True, False])
def test_rows_hold_every_short_example_once_whole_and_in_order(inputs):
  examples = make_examples(inputs=inputs)
  rows = list(packing.pack_dataset(as_dataset(examples), ROW, chunk_examples=7)
              .as_numpy_iterator())
  found = unpack(rows)
  kept = [ex for ex in examples if max(len(v) for v in ex.values()) <= ROW]
  assert 0 < len(kept) < len(examples)  # some examples are too long for a row: dropped
  assert collections.Counter(map(key, found)) == collections.Counter(map(key, kept))
  # Within a chunk, examples keep their order in each row; rows fill well (first-fit).
  order = {key(ex): i for i, ex in enumerate(kept)}
  for row in rows:
    ids = [order[key(ex)] for ex in unpack([row])]
    assert ids == sorted(ids)
  fill = sum((r["targets_segmentation"] > 0).sum() for r in rows) / (len(rows) * ROW)
  assert fill > 0.5


def test_max_length_also_drops_and_rows_never_exceed_the_row_length():
  examples = make_examples(longest=12)
  rows = list(packing.pack_dataset(as_dataset(examples), ROW, max_length=6)
              .as_numpy_iterator())
  found = unpack(rows)
  kept = [ex for ex in examples if max(len(v) for v in ex.values()) <= 6]
  assert collections.Counter(map(key, found)) == collections.Counter(map(key, kept))


def test_packed_batches_have_one_fixed_shape():
  ds = packing.packed_batches(as_dataset(make_examples(200)).repeat(), ROW, batch_size=70)
  assert ds.element_spec["targets"].shape.as_list() == [4, ROW]  # 70 // 16 rows
  for batch in ds.take(3):
    assert set(batch) == set(packing.packed_feature_names())
    for value in batch.values():
      assert value.shape == (4, ROW) and value.dtype == tf.int32


def test_packed_length_resolution():
  text = registry.problem("text2text_tmpdir")
  lm = registry.problem("languagemodel_python_stdlib_bytes")
  hp = HParams(max_length=64, batch_size=1024)
  assert Problem().packed_length(hp) == 0  # e.g. algorithmic problems: off
  assert text.packed_length(hp) == 64  # text: on, rows of max_length
  assert text.packed_length(HParams(max_length=0, batch_size=512)) == 512
  assert lm.packed_length(hp) == 0  # its examples fill a row already
  assert packing.resolve_packed_length(HParams(), 64) == 64  # basic_params1's -1
  assert packing.resolve_packed_length(HParams(packed_length=-1), 64) == 64
  assert packing.resolve_packed_length(HParams(packed_length=0), 64) == 0
  assert packing.resolve_packed_length(HParams(packed_length=32), 64) == 32
  assert packing.resolve_packed_length(HParams(packed_length=32), 0) == 32
  with pytest.raises(errors.HParamsError, match="packed_length"):
    packing.resolve_packed_length(HParams(packed_length=-2), 64)


# -- the transformer reads a packed batch as its separate examples ------------------------------

def tiny_transformer(vocab, has_inputs=True):
  hp = registry.hparams("transformer_tiny")
  hp.hidden_size, hp.filter_size, hp.num_heads = 16, 32, 2
  for name in ("layer_prepostprocess_dropout", "attention_dropout", "relu_dropout", "dropout"):
    setattr(hp, name, 0.0)
  hp.label_smoothing = 0.0
  php = HParams(vocab_size={"inputs": vocab, "targets": vocab},
                modality={"inputs": "symbol", "targets": "symbol"}, has_inputs=has_inputs)
  return registry.model("transformer")(hp, php)


@pytest.mark.parametrize("has_inputs", [True, False])
def test_loss_of_a_packed_batch_is_the_token_weighted_loss_of_its_examples(has_inputs):
  vocab = 12
  rng = np.random.default_rng(1)
  examples = []
  for _ in range(9):
    ex = {"targets": rng.integers(2, vocab, int(rng.integers(2, 7))).tolist() + [1]}
    if has_inputs:
      ex["inputs"] = rng.integers(2, vocab, int(rng.integers(2, 7))).tolist() + [1]
    examples.append(ex)
  rows = list(packing.pack_dataset(as_dataset(examples), ROW).as_numpy_iterator())
  assert len(rows) < len(examples)  # several examples share rows
  packed = {k: tf.constant(np.stack([r[k] for r in rows])) for k in rows[0]}
  model = tiny_transformer(vocab, has_inputs)
  model(packed, training=False)

  loss_sum, weight_sum = model.loss_sum(model(packed, training=False), packed)
  one_sum, one_weight = 0.0, 0.0
  for ex in examples:
    features = {k: tf.constant([v]) for k, v in ex.items()}
    s, w = model.loss_sum(model(features, training=False), features)
    one_sum, one_weight = one_sum + float(s), one_weight + float(w)
  assert float(weight_sum) == one_weight == sum(len(ex["targets"]) for ex in examples)
  np.testing.assert_allclose(float(loss_sum) / float(weight_sum), one_sum / one_weight,
                             rtol=1e-4)
  # Without the segmentation the examples of a row see each other: another loss.
  mixed = {k: v for k, v in packed.items() if k in ("inputs", "targets")}
  mixed_sum, _ = model.loss_sum(model(mixed, training=False), mixed)
  assert abs(float(mixed_sum) - float(loss_sum)) > 1e-3 * abs(float(loss_sum))


def test_a_model_that_does_not_read_packed_rows_refuses_them():
  class Plain(base.T2TModel):
    def call(self, features, training=None):
      return tf.zeros([1, 1, 3])

  model = Plain(HParams(), HParams(vocab_size={"targets": 3}, has_inputs=False))
  model({"targets": tf.ones([1, 1], tf.int32)})
  with pytest.raises(ValueError, match="packed_length=0"):
    model({"targets": tf.ones([1, 1], tf.int32),
           "targets_segmentation": tf.ones([1, 1], tf.int32),
           "targets_position": tf.zeros([1, 1], tf.int32)})


# -- a text problem: train batches packed, eval not; sharding; the trainer ----------------------

PAIRS = [("the cat sat on the mat", "die katze sass auf der matte"), ("the dog ran", "der hund"),
         ("a small house", "ein kleines haus"), ("good morning", "guten morgen"),
         ("thank you very much", "vielen dank"), ("where is the dog?", "wo ist der hund?")]


class _TinyText(registry.problem_class("text2text_tmpdir")):
  vocab_type = "character"
  num_train_shards = 2


@pytest.fixture(scope="module")
def text_data(tmp_path_factory):
  root = tmp_path_factory.mktemp("packing_text")
  raw = root / "raw"
  raw.mkdir()
  for split, pairs in (("train", PAIRS * 4), ("eval", PAIRS[:3])):
    for side, index in (("inputs", 0), ("targets", 1)):
      (raw / ("%s.%s.txt" % (side, split))).write_text("".join(p[index] + "\n" for p in pairs))
  problem = _TinyText()
  problem.generate_data(str(root / "data"), str(raw))
  return problem, str(root / "data")


def test_text_problem_packs_train_batches_only(text_data):
  problem, data = text_data
  hp = HParams(batch_size=256, max_length=64)
  train = next(iter(problem.dataset(ModeKeys.TRAIN, data, hp, seed=0)))
  assert set(train) == set(packing.packed_feature_names())
  assert train["targets"].shape == (4, 64)  # 256 // 64 rows of max_length
  assert int(train["targets_segmentation"][0].numpy().max()) > 1  # several examples a row
  for mode in (ModeKeys.EVAL, ModeKeys.PREDICT):
    batch = next(iter(problem.dataset(mode, data, hp)))
    assert set(batch) == {"inputs", "targets"}
  off = next(iter(problem.dataset(ModeKeys.TRAIN, data, HParams(batch_size=256, max_length=64,
                                                                packed_length=0), seed=0)))
  assert set(off) == {"inputs", "targets"}
  rows = next(iter(problem.dataset(ModeKeys.TRAIN, data, HParams(batch_size=256, max_length=64,
                                                                 packed_length=32), seed=0)))
  assert rows["inputs"].shape == (8, 32)


def test_sharded_pipelines_pack_every_example_once_between_them(text_data):
  problem, data = text_data
  hp = HParams(batch_size=64, max_length=64)  # one row a batch: nothing left over
  everything = collections.Counter()
  for i in range(2):
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i)
    rows = [{k: v[0] for k, v in b.items()} for b in problem.dataset(
        ModeKeys.TRAIN, data, hp, seed=0, input_context=context, repeat=False)
            .as_numpy_iterator()]
    part = collections.Counter(map(key, unpack(rows, 64)))
    assert part and not set(part) & set(everything)
    everything += part
  enc = problem.feature_encoders(data)["inputs"]
  expected = collections.Counter(
      key({"inputs": enc.encode(a) + [1], "targets": enc.encode(b) + [1]}) for a, b in PAIRS * 4)
  assert everything == expected


def trainer(problem, data, out, steps):
  hp = registry.hparams("transformer_tiny")
  hp.hidden_size, hp.filter_size, hp.num_heads = 16, 32, 2
  hp.batch_size, hp.max_length = 128, 32
  return Trainer(problem, "transformer", hp, data, str(out), steps, random_seed=5,
                 save_checkpoints_steps=3, log_step_count_steps=3)


def test_trainer_trains_on_packed_rows_and_resumes_exactly(text_data, tmp_path):
  problem, data = text_data
  tf.config.experimental.enable_op_determinism()
  straight = trainer(problem, data, tmp_path / "a", 6)
  assert "targets_segmentation" in straight.task.dataset(ModeKeys.TRAIN).element_spec
  straight.train()
  assert int(straight.global_step.numpy()) == 6
  trainer(problem, data, tmp_path / "b", 3).train()
  resumed = trainer(problem, data, tmp_path / "b", 6)
  assert resumed.restore() is not None and int(resumed.global_step.numpy()) == 3
  resumed.train()
  for a, b in zip(straight.model.weights, resumed.model.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  results = straight.evaluate(2)
  assert np.isfinite(results["loss"])
  assert os.path.exists(tmp_path / "a" / "ckpt-6.index")
