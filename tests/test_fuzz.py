"""Fuzzing with hypothesis: user input and data files raise only the documented errors.

- `HParams.parse` on any text gives a result or an `HParamsError` (and leaves the HParams
  unchanged); `to_parse_string` round-trips; `HParams.from_json` on any text gives an HParams
  or an `HParamsError`.
- A problem's reader on any bytes written as a shard (raw bytes, well-framed TFRecords of
  random payloads or of random `tf.train.Example`s, a truncated shard) yields batches or
  raises `CorruptDataError` / `DataNotFoundError`, inside `Problem.reading_errors`, as the
  trainer script reads.

A record that passes its checksum but does not parse makes tf.data raise UnicodeDecodeError
(TensorFlow cannot decode its own error message quoting the bytes); Problem.reading_errors
turns that into CorruptDataError too
(test_reader_record_that_does_not_parse_is_corrupt_data_error).

Nothing may crash or hang: every call runs under an alarm (a hang fails the example), and
hypothesis' deadline is off so that a loaded machine does not make the tests flaky.
"""
import contextlib
import math
import os
import shutil
import signal
import tempfile

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from t2t_lite.errors import CorruptDataError, DataNotFoundError, HParamsError
from t2t_lite.hparams import HParams, to_parse_string

HANG_SECONDS = 60
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
# Reading builds a tf.data pipeline per example (a second or more on a loaded machine): few
# examples, and no shrinking (a failure is reported as found).
FUZZ_SLOW = settings(max_examples=25, deadline=None, derandomize=True,
                     phases=[Phase.explicit, Phase.reuse, Phase.generate],
                     suppress_health_check=[HealthCheck.too_slow,
                                            HealthCheck.function_scoped_fixture])


class Hang(Exception):
  pass


@contextlib.contextmanager
def no_hang(seconds=HANG_SECONDS):
  """Raises Hang if the block runs longer than `seconds` (SIGALRM; main thread only)."""
  def handler(signum, frame):  # pylint: disable=unused-argument
    raise Hang("still running after %d s" % seconds)
  previous = signal.signal(signal.SIGALRM, handler)
  signal.alarm(seconds)
  try:
    yield
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def sample_hparams():
  return HParams(n_int=3, n_float=0.5, n_bool=True, n_str="adam", n_none=None,
                 ints=[1, 2], floats=[0.5, 1.5], bools=[True], strs=["a", "b"], empty=[])


# Text that is mostly the parser's own alphabet, with any character now and then.
SYNTAX = list("n_intfloatboolstrnoneemptys=,[]'\"\\ -+.eE0123456789") + [
    "true", "false", "inf", "nan", "n_int=", "ints=[", "strs=['", "\\'", "\\\\"]
parse_text = st.one_of(
    st.lists(st.sampled_from(SYNTAX) | st.characters(), max_size=40).map("".join),
    st.text(max_size=60))


@FUZZ
@given(text=parse_text)
def test_parse_gives_a_result_or_hparams_error(text):
  hp = sample_hparams()
  before = hp.values()
  try:
    with no_hang():
      hp.parse(text)
  except HParamsError as e:
    assert hp.values() == before, "a failed parse changed the HParams"
    assert "\n" not in str(e) or "\n" in text
    return
  # A successful parse keeps every hparam's type.
  for name, value in hp.values().items():
    old = before[name]
    if old is None or old == []:
      continue
    assert type(value) is type(old), (name, old, value)  # pylint: disable=unidiomatic-typecheck


names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda n: not hasattr(HParams, n))
finite = st.floats(allow_nan=False)
scalar_or_list = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30), finite, st.booleans(), st.text(),
    st.lists(st.integers(min_value=-10**9, max_value=10**9), min_size=1, max_size=4),
    st.lists(finite, min_size=1, max_size=4), st.lists(st.booleans(), min_size=1, max_size=4),
    st.lists(st.text(max_size=8), min_size=1, max_size=4))


def _zero_like(value):
  if isinstance(value, list):
    return [_zero_like(value[0])]
  return type(value)()


@FUZZ
@given(values=st.dictionaries(names, scalar_or_list, max_size=6))
def test_to_parse_string_round_trips(values):
  hp = HParams({name: _zero_like(v) for name, v in values.items()})
  with no_hang():
    hp.parse(to_parse_string(values))
  for name, value in values.items():
    got = hp.get(name)
    if isinstance(value, float) and math.isinf(value):
      assert got == value
    else:
      assert got == value and type(got) is type(value), (name, value, got)  # pylint: disable=unidiomatic-typecheck


json_text = st.one_of(
    st.text(max_size=80),
    st.recursive(st.none() | st.booleans() | st.integers() | finite | st.text(max_size=6),
                 lambda inner: st.lists(inner, max_size=3) |
                 st.dictionaries(st.text(max_size=6), inner, max_size=3),
                 max_leaves=8).map(lambda v: __import__("json").dumps(v)))


@FUZZ
@given(text=json_text)
def test_from_json_gives_hparams_or_hparams_error(text):
  try:
    with no_hang():
      hp = HParams.from_json(text)
  except HParamsError:
    return
  assert isinstance(hp, HParams)


# ------------------------------------------------------------------------ the example reader
PROBLEM = "tiny_algo"


@pytest.fixture(scope="module")
def reader_env():
  """(problem, a directory holding a valid dev shard, the eval hparams)."""
  import problems  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  from t2t_lite import registry  # pylint: disable=g-import-not-at-top
  problem = registry.problem(PROBLEM)
  valid = tempfile.mkdtemp(prefix="fuzz_valid_")
  problem.generate_data(valid, valid)
  yield problem, valid, HParams(batch_size=64, max_length=0)
  shutil.rmtree(valid, ignore_errors=True)


def _random_example(draw):
  from t2t_lite.data import generator_utils  # pylint: disable=g-import-not-at-top
  features = {}
  for name in draw(st.lists(st.sampled_from(["inputs", "targets", "x", ""]), max_size=3)):
    features[name] = draw(st.one_of(
        st.lists(st.integers(min_value=-2**63, max_value=2**63 - 1), max_size=6),
        st.lists(finite, min_size=1, max_size=4),
        st.lists(st.binary(max_size=6), min_size=1, max_size=3)))
  return generator_utils.to_example(features).SerializeToString()


@st.composite
def shard_contents(draw):
  """("raw", bytes) | ("records", [payload bytes]) | ("truncate", fraction)."""
  kind = draw(st.sampled_from(["raw", "records", "examples", "truncate"]))
  if kind == "raw":
    return kind, draw(st.binary(max_size=300))
  if kind == "records":
    return kind, draw(st.lists(st.binary(max_size=40), max_size=8))
  if kind == "examples":
    return "records", [_random_example(draw) for _ in range(draw(st.integers(1, 6)))]
  return kind, draw(st.floats(min_value=0.0, max_value=0.999))


def test_reader_record_that_does_not_parse_is_corrupt_data_error(reader_env):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  problem, _, hparams = reader_env
  data = tempfile.mkdtemp(prefix="fuzz_shard_")
  try:
    with tf.io.TFRecordWriter(os.path.join(data, "%s-dev-00000-of-00001" % PROBLEM)) as w:
      w.write(b"\x80")
    with pytest.raises(CorruptDataError):
      with no_hang(), problem.reading_errors(data, ["dev"]):
        for _ in problem.examples("eval", data, hparams):
          pass
  finally:
    shutil.rmtree(data, ignore_errors=True)


@FUZZ_SLOW
@given(content=shard_contents())
def test_reader_on_any_shard_raises_only_data_errors(reader_env, content):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  problem, valid, hparams = reader_env
  kind, payload = content
  data = tempfile.mkdtemp(prefix="fuzz_shard_")
  try:
    shard = os.path.join(data, "%s-dev-00000-of-00001" % PROBLEM)
    if kind == "raw":
      with open(shard, "wb") as f:
        f.write(payload)
    elif kind == "records":
      with tf.io.TFRecordWriter(shard) as writer:
        for record in payload:
          writer.write(record)
    else:
      with open(os.path.join(valid, os.path.basename(shard)), "rb") as f:
        good = f.read()
      with open(shard, "wb") as f:
        f.write(good[:int(len(good) * payload)])
    batches = 0
    try:
      with no_hang():
        with problem.reading_errors(data, ["dev"]):
          for _ in problem.examples("eval", data, hparams):
            batches += 1
    except (CorruptDataError, DataNotFoundError) as e:
      assert "\n" not in str(e).strip()
      return
    assume(batches >= 0)
  finally:
    shutil.rmtree(data, ignore_errors=True)
