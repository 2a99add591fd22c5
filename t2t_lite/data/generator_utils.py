"""Writing a problem's examples: tf.train.Example protos in sharded TFRecord files.

A split's files are named `<problem>-<split>-NNNNN-of-MMMMM` (tensor2tensor's scheme), e.g.
`algorithmic_reverse_binary40-train-00003-of-00010`. Every shard is written under a temporary
name (`.<final name>.incomplete-<random>`, which never matches the shard pattern) and renamed to
its final name only once it is complete and closed, so a generation that is interrupted (an
exception, Ctrl-C, a killed job) never leaves a file that looks complete; `data_exists` and the
readers only see complete shards. A later run removes leftover temporary files.

Examples are dicts of feature name -> list of ints, floats or bytes (or one such value); they
are turned into `tf.train.Example` protos with the protobuf API directly (no TensorFlow ops),
which writes a few hundred thousand small examples a second.

    from t2t_lite.data import generator_utils

    paths = generator_utils.shard_paths(data_dir, "my_problem", "train", num_shards=10)
    generator_utils.generate_files(my_generator(), paths)
"""
import os
import re
import time
import uuid

import numpy as np
import tensorflow as tf
from tensorflow.core.example import example_pb2

from absl import logging

from t2t_lite.data import integrity
from t2t_lite.utils import atomic_write

SHARD_RE = re.compile(r"^(?P<problem>.+)-(?P<split>[^-]+)-(?P<index>\d{5})-of-(?P<count>\d{5})$")
_TMP_MARK = ".incomplete-"


def shard_name(problem_name, split, index, num_shards):
  """`<problem>-<split>-NNNNN-of-MMMMM`."""
  return "%s-%s-%05d-of-%05d" % (problem_name, split, index, num_shards)


def shard_paths(data_dir, problem_name, split, num_shards):
  """The full paths of a split's `num_shards` shards, in order."""
  return [os.path.join(data_dir, shard_name(problem_name, split, i, num_shards))
          for i in range(num_shards)]


def shard_pattern(data_dir, problem_name, split):
  """The glob the readers look for (also shown in DataNotFoundError)."""
  return os.path.join(data_dir, "%s-%s-*-of-*" % (problem_name, split))


def find_shards(data_dir, problem_name, split):
  """The complete shards of a split present in data_dir.

  Returns:
    (paths, expected): the sorted paths of the complete shards found and the shard count
    their names announce (`MMMMM`; 0 when none is found). Temporary files of an interrupted
    generation never match. When shards of two different counts are present (a re-generation
    with another shard count), the count with the newest file wins.
  """
  if not tf.io.gfile.isdir(data_dir):
    return [], 0
  by_count = {}
  for path in tf.io.gfile.glob(shard_pattern(data_dir, problem_name, split)):
    m = SHARD_RE.match(os.path.basename(path))
    if not m or m.group("problem") != problem_name or m.group("split") != split:
      continue
    by_count.setdefault(int(m.group("count")), []).append(path)
  if not by_count:
    return [], 0
  if len(by_count) == 1:
    count = next(iter(by_count))
  else:
    count = max(by_count, key=lambda c: max(_mtime(p) for p in by_count[c]))
  return sorted(by_count[count]), count


def _mtime(path):
  try:
    return tf.io.gfile.stat(path).mtime_nsec
  except tf.errors.OpError:
    return 0


def to_example(dictionary):
  """A `tf.train.Example` proto from a dict of feature name -> value(s).

  Values: an int, float, str/bytes, or a list / tuple / 1-D numpy array of one of those.
  ints (and bools) become int64_list, floats float_list, str (utf-8) and bytes bytes_list.
  """
  example = example_pb2.Example()
  feature_map = example.features.feature
  for name, value in dictionary.items():
    if isinstance(value, np.ndarray):
      value = value.reshape(-1).tolist()
    elif not isinstance(value, (list, tuple)):
      value = [value]
    if not value:
      feature_map[name].int64_list.SetInParent()
      continue
    first = value[0]
    if isinstance(first, (bool, int, np.integer)):
      feature_map[name].int64_list.value.extend(value)
    elif isinstance(first, (float, np.floating)):
      feature_map[name].float_list.value.extend(value)
    elif isinstance(first, str):
      feature_map[name].bytes_list.value.extend(v.encode("utf-8") for v in value)
    elif isinstance(first, bytes):
      feature_map[name].bytes_list.value.extend(value)
    else:
      raise ValueError("feature %r: cannot store values of type %s in a tf.train.Example"
                       % (name, type(first).__name__))
  return example


def _varint(n):
  out = bytearray()
  while n > 0x7F:
    out.append((n & 0x7F) | 0x80)
    n >>= 7
  out.append(n)
  return bytes(out)


_VARINTS = [_varint(i) for i in range(1 << 14)]
_KEY_HEADERS = {}


def _vlen(n):
  return _VARINTS[n] if n < 16384 else _varint(n)


def _key_header(name):
  header = _KEY_HEADERS.get(name)
  if header is None:
    key = name.encode("utf-8")
    header = _KEY_HEADERS[name] = b"\x0a" + _vlen(len(key)) + key + b"\x12"
  return header


def serialize_example(dictionary):
  """The serialized `tf.train.Example` of a dict (the same bytes a parser reads back).

  Dicts whose values are all lists of small non-negative ints (0..127, e.g. token ids of
  small vocabularies) are encoded straight into protobuf wire format, several times faster
  than building the proto; anything else goes through `to_example`.
  """
  entries = []
  for name, value in dictionary.items():
    if type(value) is not list:  # pylint: disable=unidiomatic-typecheck
      return to_example(dictionary).SerializeToString()
    if value:
      try:
        payload = bytes(value)  # TypeError for non-ints, ValueError outside 0..255
      except (TypeError, ValueError):
        return to_example(dictionary).SerializeToString()
      first_is_int = type(value[0]) is int  # pylint: disable=unidiomatic-typecheck
      if not first_is_int or not payload.isascii():
        return to_example(dictionary).SerializeToString()
      inner = b"\x0a" + _vlen(len(payload)) + payload  # Int64List, packed
      feature = b"\x1a" + _vlen(len(inner)) + inner  # Feature.int64_list
    else:
      feature = b"\x1a\x00"
    entry = _key_header(name) + _vlen(len(feature)) + feature  # map entry: key, value
    entries.append(b"\x0a" + _vlen(len(entry)) + entry)
  body = b"".join(entries)  # Features
  return b"\x0a" + _vlen(len(body)) + body  # Example.features


def _tmp_path(path):
  head, tail = os.path.split(path)
  return os.path.join(head, ".%s%s%s" % (tail, _TMP_MARK, uuid.uuid4().hex[:8]))


def remove_incomplete(data_dir, prefix=""):
  """Deletes temporary files an interrupted generation left in data_dir (names starting with
  `.<prefix>` and containing `.incomplete-`). Returns how many were removed."""
  if not tf.io.gfile.isdir(data_dir):
    return 0
  removed = 0
  for name in tf.io.gfile.listdir(data_dir):
    if name.startswith("." + prefix) and _TMP_MARK in name:
      try:
        tf.io.gfile.remove(os.path.join(data_dir, name))
        removed += 1
      except tf.errors.OpError:
        pass
  return removed


def outputs_exist(paths):
  """True when every path exists."""
  return all(tf.io.gfile.exists(p) for p in paths)


class Progress:
  """Counts examples written and logs/prints `N examples, R examples/s` now and then.

  Args:
    label: what is being written (shown in each line).
    every_s: seconds between lines.
    printer: a function taking one string (default: absl logging.info).
  """

  def __init__(self, label="", every_s=5.0, printer=None):
    self.label = label
    self.every_s = every_s
    self.printer = printer or logging.info
    self.count = 0
    self.start = time.time()
    self._last = self.start

  def add(self, n=1):
    self.count += n
    now = time.time()
    if now - self._last >= self.every_s:
      self._last = now
      self.printer("%s: %d examples written, %.0f examples/s" % (self.label, self.count,
                                                                 self.rate()))

  def rate(self):
    return self.count / max(time.time() - self.start, 1e-9)


def generate_files(generator, output_paths, max_cases=None, skip_existing=True,
                   progress=None):
  """Writes a generator's examples round-robin into `output_paths`, atomically.

  Args:
    generator: yields dicts of feature name -> value(s) (see `to_example`), or already
      serialized `bytes` records.
    output_paths: the final shard paths; example i goes to shard i % len(output_paths).
    max_cases: stop after this many examples (None: until the generator ends).
    skip_existing: if every output path exists already, write nothing and return 0.
    progress: an optional `Progress` to count into.

  Returns:
    The number of examples written.

  If the generator raises (or the process is interrupted), the temporary files are deleted
  where possible and no final name is ever created.

  Raises:
    OutputWriteError: a shard could not be written (a full or read-only disk): one line
      naming the folder, the free space seen and the complete shards kept.
  """
  output_paths = list(output_paths)
  if not output_paths:
    return 0
  if skip_existing and outputs_exist(output_paths):
    logging.info("Skipping generation of %s: the files exist.", output_paths[0])
    return 0
  out_dir = os.path.dirname(output_paths[0])
  tmp_paths = [_tmp_path(p) for p in output_paths]
  writers = []
  count = 0
  done = False

  def write_failed(error):
    # Only errors of the writes themselves: a generator's own OSError is not a full disk.
    kept = [p for p in output_paths if tf.io.gfile.exists(p)]
    return atomic_write.write_failed(
        "the data shards", output_paths[0], error,
        "the complete shards already there are kept (%d of these %d); a rerun writes the rest"
        % (len(kept), len(output_paths)))

  try:
    try:
      if out_dir:
        tf.io.gfile.makedirs(out_dir)
      writers.extend(tf.io.TFRecordWriter(p) for p in tmp_paths)
    except atomic_write.write_errors() as e:
      raise write_failed(e) from None
    num = len(writers)
    for case in generator:
      if max_cases is not None and count >= max_cases:
        break
      record = case if isinstance(case, bytes) else serialize_example(case)
      try:
        writers[count % num].write(record)
      except atomic_write.write_errors() as e:
        raise write_failed(e) from None
      count += 1
      if progress is not None and count % 1000 == 0:
        progress.add(1000)
    if progress is not None:
      progress.add(count % 1000)
    try:
      for w in writers:
        w.close()
      for tmp, final in zip(tmp_paths, output_paths):
        tf.io.gfile.rename(tmp, final, overwrite=True)
    except atomic_write.write_errors() as e:
      raise write_failed(e) from None
    done = True
  finally:
    if not done:
      for w in writers:
        try:
          w.close()
        except Exception:  # pylint: disable=broad-except
          pass
      for tmp in tmp_paths:
        try:
          if tf.io.gfile.exists(tmp):
            tf.io.gfile.remove(tmp)
        except tf.errors.OpError:
          pass
  return count


def read_records(path):
  """The serialized records of one TFRecord file, as a list of bytes (eager)."""
  return [r.numpy() for r in tf.data.TFRecordDataset(path)]


def check_shard(path):
  """Reads a whole TFRecord file: every record's CRC, and the records must fill the file.

  Returns:
    The number of records.

  Raises:
    t2t_lite.errors.CorruptDataError naming the file when it is truncated or corrupt.
  """
  return integrity.check_shard(path)


def cycle_random_rng(seed, *keys):
  """A numpy Generator seeded from `seed` and any number of ints/strings (deterministic)."""
  import zlib  # pylint: disable=g-import-not-at-top
  material = [int(seed or 0) & 0xFFFFFFFF]
  for k in keys:
    material.append(zlib.crc32(str(k).encode("utf-8")))
  return np.random.default_rng(material)
