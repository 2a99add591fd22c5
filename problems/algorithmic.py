"""Algorithmic problems (tensor2tensor's names): identity, shift, reverse, addition,
multiplication and sort over random sequences of symbols.

Symbol k is stored as id k + 2 (0 is PAD, 1 is EOS) and every sequence ends with EOS.
Splits:

- train (`train_size` examples, 10 shards) and dev (`dev_size`, 1 shard): input lengths
  drawn uniformly from 1..`train_length` (40);
- test (`test_size`, 1 shard): lengths `train_length + 1`..`test_length` (400), to measure
  length generalization (`problem.dataset(ModeKeys.EVAL, data_dir, hp, split="test")`).

Sizes are class attributes; subclass to change them:

    @registry.register_problem
    class SmallReverse(AlgorithmicReverseBinary40):
      train_size = 2000

    t2t-datagen --problem=algorithmic_reverse_binary40 --data_dir=/tmp/t2t_data

Each shard is generated from its own seed (the problem's `random_seed`, the split and the
shard index), so the data is the same on every run and a missing shard can be regenerated
alone. Addition and multiplication write two little-endian numbers separated by a separator
symbol inside the vocabulary (id base + 2, shown as "+" or "*"; tensor2tensor's was one past
the end of its vocabulary).
"""
import numpy as np

from t2t_lite import registry
from t2t_lite.data import generator_utils
from t2t_lite.data import text_encoder
from t2t_lite.data.problem import Problem

_SHIFT = text_encoder.NUM_RESERVED_TOKENS  # symbol k is id k + 2
_EOS = text_encoder.EOS_ID
_CHUNK = 2048  # examples drawn from numpy at a time


class AlgorithmicProblem(Problem):
  """Base class: random input sequences and a deterministic function of them.

  A subclass sets `num_symbols` and implements `generator(nbr_symbols, max_length,
  nbr_cases, rng, min_length)`, yielding {"inputs": [symbols], "targets": [symbols]}
  with symbols already shifted (ids >= 2), without EOS.
  """

  num_symbols = 2
  train_length = 40
  dev_length = 40
  test_length = 400
  train_size = 100000
  dev_size = 10000
  test_size = 1000
  num_train_shards = 10
  num_dev_shards = 1
  num_test_shards = 1
  # Tests and tools may set this to a Progress that counts written examples.
  datagen_progress = None

  def symbol_names(self):
    """How the encoder writes each symbol (default: its number)."""
    return None

  def dataset_splits(self):
    return [
        {"split": "train", "shards": self.num_train_shards},
        {"split": "dev", "shards": self.num_dev_shards},
        {"split": "test", "shards": self.num_test_shards},
    ]

  def split_spec(self, split):
    """(size, min_length, max_length) of a split."""
    if split == "train":
      return self.train_size, 1, self.train_length
    if split == "dev":
      return self.dev_size, 1, self.dev_length
    if split == "test":
      low = min(self.train_length + 1, self.test_length)
      return self.test_size, low, self.test_length
    raise ValueError("unknown split %r" % split)

  def generator(self, nbr_symbols, max_length, nbr_cases, rng, min_length=1):
    raise NotImplementedError

  def feature_encoders(self, data_dir):
    del data_dir
    enc = text_encoder.SymbolEncoder(self.num_symbols, self.symbol_names())
    return {"inputs": enc, "targets": enc}

  def hparams(self, defaults, model_hparams):
    del model_hparams
    vocab = self.num_symbols + _SHIFT
    defaults.vocab_size["inputs"] = vocab
    defaults.vocab_size["targets"] = vocab
    defaults.modality["inputs"] = "symbol"
    defaults.modality["targets"] = "symbol"

  def _shard_examples(self, split, index, count):
    rng = generator_utils.cycle_random_rng(self.random_seed, self.dataset_filename(), split,
                                           index)
    _, low, high = self.split_spec(split)
    eos = [_EOS]
    for ex in self.generator(self.num_symbols, high, count, rng, min_length=low):
      yield {"inputs": ex["inputs"] + eos, "targets": ex["targets"] + eos}

  def generate_data(self, data_dir, tmp_dir, task_id=-1):
    """Writes every split's shards (task_id >= 0: only that training shard)."""
    del tmp_dir
    generator_utils.remove_incomplete(data_dir, self.dataset_filename())
    for spec in self.dataset_splits():
      split, num_shards = spec["split"], spec["shards"]
      if task_id >= 0 and split != "train":
        continue
      size = self.split_spec(split)[0]
      paths = generator_utils.shard_paths(data_dir, self.dataset_filename(), split, num_shards)
      for index, path in enumerate(paths):
        if task_id >= 0 and index != task_id:
          continue
        count = size // num_shards + (1 if index < size % num_shards else 0)
        generator_utils.generate_files(self._shard_examples(split, index, count), [path],
                                       progress=self.datagen_progress)


def _random_sequences(rng, n, min_length, max_length, nbr_symbols, low=0):
  """n lists of shifted symbols in [low, nbr_symbols), lengths uniform in the range."""
  lengths = rng.integers(min_length, max_length + 1, n).tolist()
  rows = (rng.integers(low, nbr_symbols, (n, max_length), dtype=np.int32) + _SHIFT).tolist()
  return [r[:l] for r, l in zip(rows, lengths)]


def _chunks(nbr_cases):
  done = 0
  while done < nbr_cases:
    n = min(_CHUNK, nbr_cases - done)
    yield n
    done += n


@registry.register_problem
class AlgorithmicIdentityBinary40(AlgorithmicProblem):
  """Copy a binary sequence: targets = inputs."""

  num_symbols = 2

  def generator(self, nbr_symbols, max_length, nbr_cases, rng, min_length=1):
    for n in _chunks(nbr_cases):
      for seq in _random_sequences(rng, n, min_length, max_length, nbr_symbols):
        yield {"inputs": seq, "targets": seq}


@registry.register_problem
class AlgorithmicIdentityDecimal40(AlgorithmicIdentityBinary40):
  """Copy a sequence of 10 symbols."""

  num_symbols = 10


@registry.register_problem
class AlgorithmicShiftDecimal40(AlgorithmicProblem):
  """Add `shift` to every symbol: inputs use symbols 0..9, targets 10..19."""

  num_symbols = 20
  shift = 10

  def generator(self, nbr_symbols, max_length, nbr_cases, rng, min_length=1):
    for n in _chunks(nbr_cases):
      for seq in _random_sequences(rng, n, min_length, max_length, nbr_symbols - self.shift):
        yield {"inputs": seq, "targets": [s + self.shift for s in seq]}


@registry.register_problem
class AlgorithmicReverseBinary40(AlgorithmicProblem):
  """Reverse a binary sequence."""

  num_symbols = 2

  def generator(self, nbr_symbols, max_length, nbr_cases, rng, min_length=1):
    for n in _chunks(nbr_cases):
      for seq in _random_sequences(rng, n, min_length, max_length, nbr_symbols):
        yield {"inputs": seq, "targets": seq[::-1]}


@registry.register_problem
class AlgorithmicReverseDecimal40(AlgorithmicReverseBinary40):
  """Reverse a sequence of 10 symbols."""

  num_symbols = 10


def _to_digits(number, base):
  """Little-endian digits of a non-negative int (at least one digit)."""
  if base == 2:
    return [int(c) for c in reversed(format(number, "b"))]
  if base == 10:
    return [int(c) for c in reversed(str(number))]
  digits = []
  while True:
    number, d = divmod(number, base)
    digits.append(d)
    if not number:
      return digits


def _from_digits(digits, base):
  """An int from little-endian digits."""
  if base <= 10:
    return int("".join(str(d) for d in reversed(digits)), base)
  value = 0
  for d in reversed(digits):
    value = value * base + d
  return value


class _ArithmeticProblem(AlgorithmicProblem):
  """Two little-endian numbers in `base` separated by the symbol `base`; targets: the result.

  The input length (both numbers and the separator) is drawn from max(3, min)..max.
  """

  base = 2
  operator = "+"

  @property
  def num_symbols(self):  # the digits and the separator
    return self.base + 1

  def symbol_names(self):
    return [str(k) if k < 10 else chr(ord("a") + k - 10) for k in range(self.base)] + [
        self.operator]

  def combine(self, a, b):
    raise NotImplementedError

  def generator(self, nbr_symbols, max_length, nbr_cases, rng, min_length=1):
    base = self.base
    max_length = max(max_length, 3)
    min_length = min(max(min_length, 3), max_length)
    sep = base + _SHIFT
    fast = base <= 10
    if fast:  # digits as ASCII bytes: int(bytes, base) and str.translate do the work in C.
      ascii_digits = bytes(range(ord("0"), ord("0") + base))
      to_ids = bytes.maketrans(ascii_digits, bytes(range(_SHIFT, _SHIFT + base)))
    for n in _chunks(nbr_cases):
      lengths = rng.integers(min_length, max_length + 1, n)
      splits = (rng.random(n) * (lengths - 2)).astype(np.int64) + 1  # first number: 1..L-2
      digits = rng.integers(0, base, (n, max_length), dtype=np.uint8)
      if fast:
        rows = (digits + ord("0")).tobytes()
        for i, (length, n1) in enumerate(zip(lengths.tolist(), splits.tolist())):
          row = rows[i * max_length:(i + 1) * max_length]
          d1, d2 = row[:n1], row[n1:length - 1]
          value = self.combine(int(d1[::-1], base), int(d2[::-1], base))
          text = format(value, "b") if base == 2 else (
              str(value) if base == 10 else np.base_repr(value, base))
          yield {"inputs": list(d1.translate(to_ids)) + [sep] + list(d2.translate(to_ids)),
                 "targets": list(text[::-1].encode("ascii").translate(to_ids))}
      else:
        for row, length, n1 in zip(digits.tolist(), lengths.tolist(), splits.tolist()):
          d1 = row[:n1]
          d2 = row[n1:length - 1]
          value = self.combine(_from_digits(d1, base), _from_digits(d2, base))
          yield {"inputs": [d + _SHIFT for d in d1] + [sep] + [d + _SHIFT for d in d2],
                 "targets": [d + _SHIFT for d in _to_digits(value, base)]}


@registry.register_problem
class AlgorithmicAdditionBinary40(_ArithmeticProblem):
  """Add two binary numbers (little-endian)."""

  base = 2
  operator = "+"

  def combine(self, a, b):
    return a + b


@registry.register_problem
class AlgorithmicAdditionDecimal40(AlgorithmicAdditionBinary40):
  """Add two decimal numbers (little-endian)."""

  base = 10


@registry.register_problem
class AlgorithmicMultiplicationBinary40(_ArithmeticProblem):
  """Multiply two binary numbers (little-endian)."""

  base = 2
  operator = "*"

  def combine(self, a, b):
    return a * b


@registry.register_problem
class AlgorithmicMultiplicationDecimal40(AlgorithmicMultiplicationBinary40):
  """Multiply two decimal numbers (little-endian)."""

  base = 10


@registry.register_problem
class AlgorithmicSortProblem(AlgorithmicProblem):
  """Sort a sequence of distinct symbols drawn from `num_symbols` (= test_length, so the
  long test sequences can be distinct too)."""

  num_symbols = 400

  def generator(self, nbr_symbols, max_length, nbr_cases, rng, min_length=1):
    max_length = min(max_length, nbr_symbols)
    min_length = min(min_length, max_length)
    for n in _chunks(min(nbr_cases, _CHUNK)) if nbr_cases <= _CHUNK else _chunks(nbr_cases):
      lengths = rng.integers(min_length, max_length + 1, n).tolist()
      # Distinct symbols: the first L of a random permutation (argsort of uniform noise).
      perms = (np.argsort(rng.random((n, nbr_symbols)), axis=1)[:, :max_length]
               + _SHIFT).tolist()
      for row, length in zip(perms, lengths):
        seq = row[:length]
        yield {"inputs": seq, "targets": sorted(seq)}


@registry.register_problem
class TinyAlgo(AlgorithmicIdentityBinary40):
  """A tiny identity problem for tests and smoke runs: lengths 1..10, 1000 train examples."""

  train_length = 10
  dev_length = 10
  test_length = 20
  train_size = 1000
  dev_size = 100
  test_size = 100
  num_train_shards = 2
