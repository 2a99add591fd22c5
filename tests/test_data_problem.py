"""Problem base class, generator utils and batching, on tiny algorithmic problems."""
import os

import numpy as np
import pytest
import tensorflow as tf

import problems  # noqa: F401  (registers the built-ins)
from problems import algorithmic
from t2t_lite import registry
from t2t_lite.data import ModeKeys, Problem, batching_scheme, bucket_boundaries
from t2t_lite.data import generator_utils
from t2t_lite.errors import CorruptDataError, DataNotFoundError
from t2t_lite.hparams import HParams


class SmallReverse(algorithmic.AlgorithmicReverseBinary40):
  train_size = 400
  dev_size = 60
  test_size = 20
  num_train_shards = 4


class SmallReverseDecimal(algorithmic.AlgorithmicReverseDecimal40):
  train_size = 300
  dev_size = 50
  test_size = 10
  num_train_shards = 3


@pytest.fixture(scope="module", autouse=True)
def _register():
  for cls, name in [(SmallReverse, "small_reverse_test"),
                    (SmallReverseDecimal, "small_reverse_decimal_test")]:
    registry.register_problem(name)(cls)
  yield
  registry.unregister("problem", "small_reverse_test")
  registry.unregister("problem", "small_reverse_decimal_test")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  d = str(tmp_path_factory.mktemp("data"))
  registry.problem("small_reverse_test").generate_data(d, d)
  registry.problem("small_reverse_decimal_test").generate_data(d, d)
  return d


def _hp(**kw):
  base = dict(batch_size=128, max_length=0, min_length_bucket=4, length_bucket_step=1.5)
  base.update(kw)
  return HParams(**base)


def _records(path):
  return [tf.train.Example.FromString(r) for r in generator_utils.read_records(path)]


def _ints(example, name):
  return list(example.features.feature[name].int64_list.value)


def test_names_and_shard_files(data_dir):
  p = registry.problem("small_reverse_test")
  assert p.name == "small_reverse_test"
  assert registry.problem("small_reverse_test_rev").name == "small_reverse_test_rev"
  assert registry.problem("small_reverse_test_rev").dataset_filename() == "small_reverse_test"
  names = sorted(n for n in os.listdir(data_dir) if n.startswith("small_reverse_test-"))
  assert names == (["small_reverse_test-dev-00000-of-00001",
                    "small_reverse_test-test-00000-of-00001"] +
                   ["small_reverse_test-train-%05d-of-00004" % i for i in range(4)])
  assert not [n for n in os.listdir(data_dir) if "incomplete" in n]
  assert p.data_exists(data_dir)
  assert p.check_shards(data_dir) == {"train": 400, "dev": 60, "test": 20}


def test_examples_shifted_with_eos_and_lengths(data_dir):
  p = registry.problem("small_reverse_test")
  exs = [e for path in p.data_files(data_dir, "train") for e in _records(path)]
  assert len(exs) == 400
  lengths = []
  for e in exs:
    inputs, targets = _ints(e, "inputs"), _ints(e, "targets")
    assert inputs[-1] == 1 and targets[-1] == 1
    assert set(inputs[:-1]) <= {2, 3}
    assert targets[:-1] == inputs[:-1][::-1]
    lengths.append(len(inputs) - 1)
  assert min(lengths) >= 1 and max(lengths) <= 40
  test = _records(p.data_files(data_dir, "test")[0])
  assert all(41 <= len(_ints(e, "inputs")) - 1 <= 400 for e in test)


def test_generation_is_deterministic_for_a_seed(tmp_path):
  p = SmallReverse()
  p.generate_data(str(tmp_path / "a"), None)
  p2 = SmallReverse()
  p2.generate_data(str(tmp_path / "b"), None)
  p3 = SmallReverse()
  p3.random_seed = 7
  p3.generate_data(str(tmp_path / "c"), None)
  name = "small_reverse_test-train-00001-of-00004"
  a, b, c = (generator_utils.read_records(str(tmp_path / x / name)) for x in "abc")
  assert a == b
  assert a != c


@pytest.mark.parametrize("name", [
    "algorithmic_identity_binary40", "algorithmic_identity_decimal40",
    "algorithmic_shift_decimal40", "algorithmic_reverse_decimal40",
    "algorithmic_addition_binary40", "algorithmic_addition_decimal40",
    "algorithmic_multiplication_binary40", "algorithmic_multiplication_decimal40",
    "algorithmic_sort_problem", "tiny_algo"])
def test_algorithmic_generators_are_correct(name):
  p = registry.problem(name)
  vocab = p.get_hparams().vocab_size
  enc = p.feature_encoders(None)["inputs"]
  rng = np.random.default_rng(0)
  for ex in p.generator(p.num_symbols, 12, 30, rng, min_length=1):
    inputs, targets = ex["inputs"], ex["targets"]
    assert all(2 <= i < vocab["inputs"] for i in inputs + targets)
    text_in = enc.decode(inputs)
    assert enc.encode(text_in) == inputs
    toks = text_in.split()
    if "addition" in name or "multiplication" in name:
      op = "+" if "addition" in name else "*"
      base = p.base
      a, b = text_in.split(" %s " % op)
      val = lambda s: int("".join(reversed(s.split())), base)  # noqa: E731
      want = val(a) + val(b) if op == "+" else val(a) * val(b)
      assert val(enc.decode(targets)) == want
    elif "reverse" in name:
      assert targets == inputs[::-1]
    elif "shift" in name:
      assert targets == [i + 10 for i in inputs]
    elif "sort" in name:
      assert targets == sorted(inputs) and len(set(inputs)) == len(inputs)
    else:
      assert targets == inputs
    assert 1 <= len(toks) <= 12


def test_separator_inside_vocabulary():
  p = registry.problem("algorithmic_addition_binary40")
  assert p.get_hparams().vocab_size["inputs"] == 5  # pad, eos, 0, 1, +
  assert p.feature_encoders(None)["inputs"].encode("1 0 + 1") == [3, 2, 4, 3]


def test_problem_hparams_and_rev_copy():
  hp = registry.problem("algorithmic_shift_decimal40").get_hparams()
  assert hp.vocab_size == {"inputs": 22, "targets": 22}
  assert hp.modality == {"inputs": "symbol", "targets": "symbol"}
  assert hp.has_inputs and not hp.was_reversed and not hp.was_copy
  rev = registry.problem("algorithmic_shift_decimal40_rev").get_hparams()
  assert rev.was_reversed
  assert registry.problem("algorithmic_shift_decimal40_copy").get_hparams().was_copy


def test_rev_and_copy_swap_features(data_dir):
  hp = _hp(batch_size=4096, max_length=0)
  def first(name):
    ds = registry.problem(name).dataset(ModeKeys.EVAL, data_dir, hp, seed=1)
    return next(iter(ds))
  base, rev, copy = (first("small_reverse_decimal_test" + s) for s in ("", "_rev", "_copy"))
  np.testing.assert_array_equal(rev["inputs"], base["targets"])
  np.testing.assert_array_equal(rev["targets"], base["inputs"])
  np.testing.assert_array_equal(copy["targets"], base["inputs"])


def test_reading_leaves_the_problem_unchanged(data_dir):
  """dataset(), examples() and get_hparams() store nothing on the problem."""
  p = registry.problem("small_reverse_decimal_test_rev")
  before = dict(vars(p))
  next(iter(p.dataset(ModeKeys.TRAIN, data_dir, _hp(), seed=1)))
  next(iter(p.examples(ModeKeys.EVAL, data_dir)))
  assert p.get_hparams(_hp(), data_dir=data_dir).data_dir == data_dir
  assert p.get_hparams().data_dir is None
  assert vars(p) == before


def test_bucket_boundaries_scheme():
  assert bucket_boundaries(64, 8, 1.1)[:15] == list(range(8, 21)) + [22, 24]
  b = bucket_boundaries(256, 8, 1.1)
  assert b[0] == 8 and b[-1] < 256 and all(y > x for x, y in zip(b, b[1:]))
  lengths, sizes = batching_scheme(4096, 256, 8, 1.1)
  assert lengths[-1] == 256 and sizes == [4096 // n for n in lengths]


def test_token_batching_respects_budget_and_pads_to_boundary(data_dir):
  p = registry.problem("small_reverse_decimal_test")
  hp = _hp(batch_size=128, max_length=30)
  lengths, _ = batching_scheme(128, 30, 4, 1.5)
  seen = 0
  for batch in p.dataset(ModeKeys.TRAIN, data_dir, hp, seed=3).take(40):
    inputs, targets = batch["inputs"].numpy(), batch["targets"].numpy()
    assert inputs.dtype == np.int32 and inputs.shape == targets.shape
    b, t = inputs.shape
    assert t in lengths
    assert b * t <= 128
    true_len = max((inputs > 0).sum(1).max(), (targets > 0).sum(1).max())
    assert true_len <= t <= 30
    smaller = [n for n in lengths if n < t]
    assert not smaller or true_len > max(smaller)  # the smallest bucket that holds it
    seen += b
  assert seen > 100


def test_training_drops_long_examples_eval_keeps_them(data_dir):
  p = registry.problem("small_reverse_decimal_test")
  hp = _hp(batch_size=64, max_length=10)
  n_train = 0
  for batch in p.dataset(ModeKeys.TRAIN, data_dir, hp, seed=0, repeat=False):
    assert batch["inputs"].shape[1] <= 10
    n_train += batch["inputs"].shape[0]
  kept = sum(1 for path in p.data_files(data_dir, "train") for e in _records(path)
             if len(_ints(e, "inputs")) <= 10)
  assert n_train == kept
  n_eval, longest = 0, 0
  for batch in p.dataset(ModeKeys.EVAL, data_dir, hp):
    n_eval += batch["inputs"].shape[0]
    longest = max(longest, batch["inputs"].shape[1])
  assert n_eval == 50 and longest > 10
  hp_drop = _hp(batch_size=64, max_length=10, eval_drop_long_sequences=True)
  assert all(b["inputs"].shape[1] <= 10 for b in p.dataset(ModeKeys.EVAL, data_dir, hp_drop))


def test_eval_passes_run_without_autotuning_training_with_it(data_dir):
  # An evaluation deletes its iterator after each pass; with tf.data's autotuning that
  # deletion waited seconds (see batch_examples). Training keeps autotuning.
  p = registry.problem("small_reverse_decimal_test")
  hp = _hp(batch_size=64, max_length=10)
  assert p.dataset(ModeKeys.EVAL, data_dir, hp).options().autotune.enabled is False
  assert p.dataset(ModeKeys.TRAIN, data_dir, hp, seed=0).options().autotune.enabled is not False


@pytest.mark.parametrize("hparams", [dict(batch_size=64, max_length=10),
                                     dict(batch_size=64, max_length=10, packed_length=16),
                                     dict(batch_size=64, max_length=10, fixed_batch_shapes=True)])
def test_the_data_paths_own_functions_are_not_autograph_converted(data_dir, monkeypatch,
                                                                 hparams):
  # Converting them cost seconds of every run's start (integrity.without_autograph); a
  # problem's own preprocess_example is still converted (small_reverse_decimal_test has none).
  from tensorflow.python.autograph.impl import api as autograph_api  # the conversion itself
  converted = []
  convert = autograph_api._convert_actual
  monkeypatch.setattr(autograph_api, "_convert_actual",
                      lambda fn, ctx: converted.append(fn) or convert(fn, ctx))
  p = registry.problem("small_reverse_decimal_test")
  for mode in (ModeKeys.TRAIN, ModeKeys.EVAL):
    next(iter(p.dataset(mode, data_dir, _hp(**hparams), seed=0)))
  assert converted == []


def test_fixed_batch_shapes(data_dir):
  p = registry.problem("small_reverse_decimal_test")
  hp = _hp(batch_size=256, max_length=32, fixed_batch_shapes=True)
  ds = p.dataset(ModeKeys.TRAIN, data_dir, hp, seed=0)
  assert ds.element_spec["inputs"].shape.as_list() == [8, 32]
  for batch in ds.take(5):
    assert batch["inputs"].shape == (8, 32) and batch["targets"].shape == (8, 32)


def test_deterministic_order_for_a_seed(data_dir):
  p = registry.problem("small_reverse_test")
  hp = _hp(batch_size=128, max_length=48)
  def run(seed):
    return [b["inputs"].numpy().tolist() for b in p.dataset(ModeKeys.TRAIN, data_dir, hp,
                                                               seed=seed).take(8)]
  assert run(5) == run(5)
  assert run(5) != run(6)
  hp_det = _hp(batch_size=128, max_length=48, deterministic_data=True)
  a = [b["inputs"].numpy().tolist() for b in p.dataset(ModeKeys.TRAIN, data_dir, hp_det).take(4)]
  b = [b["inputs"].numpy().tolist() for b in p.dataset(ModeKeys.TRAIN, data_dir, hp_det).take(4)]
  assert a == b


def _all_examples(ds):
  out = []
  for batch in ds:
    for row in batch["inputs"].numpy():
      out.append(tuple(int(x) for x in row if x))
  return out


@pytest.mark.parametrize("num_pipelines", [2, 6])  # fewer files than pipelines: by example
def test_per_worker_sharding(data_dir, num_pipelines):
  p = registry.problem("small_reverse_test")
  hp = _hp(batch_size=512, max_length=0)
  everything = _all_examples(p.dataset(ModeKeys.TRAIN, data_dir, hp, shuffle=False,
                                       repeat=False))
  parts = []
  for i in range(num_pipelines):
    ctx = tf.distribute.InputContext(num_input_pipelines=num_pipelines, input_pipeline_id=i,
                                     num_replicas_in_sync=num_pipelines)
    parts.append(_all_examples(p.dataset(ModeKeys.TRAIN, data_dir, hp, shuffle=False,
                                         repeat=False, input_context=ctx)))
  assert all(parts)
  assert sorted(sum(parts, [])) == sorted(everything)
  assert len(everything) == 400


def test_missing_data_error_names_dir_pattern_and_command(tmp_path):
  p = registry.problem("small_reverse_test_rev")
  assert not p.data_exists(str(tmp_path))
  with pytest.raises(DataNotFoundError) as e:
    p.dataset(ModeKeys.TRAIN, str(tmp_path), _hp())
  msg = str(e.value)
  assert str(tmp_path) in msg
  assert "small_reverse_test-train-*-of-*" in msg
  assert "t2t-datagen --problem=small_reverse_test --data_dir=%s" % tmp_path in msg


def test_incomplete_data_is_missing(data_dir, tmp_path):
  p = registry.problem("small_reverse_test")
  for name in os.listdir(data_dir):
    if name.startswith("small_reverse_test-") and "00003" not in name:
      tf.io.gfile.copy(os.path.join(data_dir, name), str(tmp_path / name))
  assert not p.data_exists(str(tmp_path))
  with pytest.raises(DataNotFoundError, match="3 of the 4 shards"):
    p.data_files(str(tmp_path), "train")


def test_interrupted_generation_leaves_no_complete_looking_file(tmp_path):
  def gen():
    for i in range(1000):
      if i == 500:
        raise KeyboardInterrupt("simulated interruption")
      yield {"inputs": [2, 3, 1], "targets": [3, 1]}
  paths = generator_utils.shard_paths(str(tmp_path), "interrupted", "train", 2)
  with pytest.raises(KeyboardInterrupt):
    generator_utils.generate_files(gen(), paths)
  assert os.listdir(tmp_path) == []
  files, _ = generator_utils.find_shards(str(tmp_path), "interrupted", "train")
  assert files == []


def test_temporary_files_never_match_the_shard_pattern(tmp_path):
  """Even while a shard is being written (or after a hard kill), readers cannot see it."""
  seen = []
  def gen():
    for i in range(10):
      if i == 5:
        seen.extend(os.listdir(tmp_path))
      yield {"targets": [2, 1]}
  paths = generator_utils.shard_paths(str(tmp_path), "p", "dev", 1)
  generator_utils.generate_files(gen(), paths)
  assert len(seen) == 1 and seen[0] not in os.listdir(tmp_path)
  assert generator_utils.SHARD_RE.match(seen[0]) is None
  assert os.listdir(tmp_path) == ["p-dev-00000-of-00001"]


def test_existing_shards_are_skipped(tmp_path):
  paths = generator_utils.shard_paths(str(tmp_path), "p", "train", 1)
  assert generator_utils.generate_files(iter([{"targets": [2, 1]}] * 3), paths) == 3
  assert generator_utils.generate_files(iter([{"targets": [2, 1]}] * 5), paths) == 0
  assert len(generator_utils.read_records(paths[0])) == 3


def test_corrupt_shard_error_names_the_file(data_dir, tmp_path):
  p = registry.problem("small_reverse_test")
  for name in os.listdir(data_dir):
    if name.startswith("small_reverse_test-"):
      tf.io.gfile.copy(os.path.join(data_dir, name), str(tmp_path / name))
  bad = str(tmp_path / "small_reverse_test-train-00002-of-00004")
  with open(bad, "rb") as f:
    raw = f.read()
  with open(bad, "wb") as f:
    f.write(raw[:len(raw) // 2])  # truncated
  with pytest.raises(CorruptDataError, match="small_reverse_test-train-00002-of-00004"):
    p.check_shards(str(tmp_path))
  ds = p.dataset(ModeKeys.TRAIN, str(tmp_path), _hp(batch_size=512), shuffle=False)
  with pytest.raises(CorruptDataError, match="small_reverse_test-train-00002-of-00004"):
    with p.reading_errors(str(tmp_path)):
      for _ in ds.take(100):
        pass


def test_to_example_and_fast_serializer_agree():
  for d in [{"inputs": [2, 3, 1], "targets": [1]}, {"targets": list(range(300))},
            {"x": [0.5, 1.5], "label": 3}, {"t": "text", "b": [b"a", b"b"]}]:
    fast = tf.train.Example.FromString(generator_utils.serialize_example(d))
    assert fast == generator_utils.to_example(d)


def test_eval_metrics_and_splits():
  p = registry.problem("algorithmic_reverse_binary40")
  assert "accuracy_per_sequence" in p.eval_metrics()
  assert [s["split"] for s in p.dataset_splits()] == ["train", "dev", "test"]
  assert p.max_length(HParams(max_length=0, batch_size=512)) == 512
  assert p.max_length(None) == 256
  assert Problem().name == "problem"


def test_check_shard_catches_a_flipped_byte(tmp_path):
  path = generator_utils.shard_paths(str(tmp_path), "p", "train", 1)[0]
  generator_utils.generate_files(iter([{"targets": [2, 3, 1]}] * 50), [path])
  assert generator_utils.check_shard(path) == 50
  raw = bytearray(open(path, "rb").read())
  raw[len(raw) // 2] ^= 0xFF
  open(path, "wb").write(bytes(raw))
  with pytest.raises(CorruptDataError, match="p-train-00000-of-00001"):
    generator_utils.check_shard(path)
