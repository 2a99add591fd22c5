"""Corrupt shards: finding them while reading, naming them, and checking them up front.

A TFRecord file is a sequence of records, each `length (8 bytes) + CRC of the length (4) +
data + CRC of the data (4)`: a record of n bytes takes n + 16 bytes of the file, so a file
whose every record was read has exactly `sum(n + 16)` bytes. tf.data alone reports damage
badly: a record whose checksum fails raises `DataLossError("corrupted record at N")` without
the file's name; a file cut inside a record header ends silently (the records after it are
lost without an error); a record that passes its checksums but is no tf.train.Example fails
parsing with a message quoting its bytes (which TensorFlow sometimes cannot even decode).

So every shard is read through `read_checked`, inside the input pipeline itself:

- the reader skips the rest of a file after a bad record (`ignore_errors`; TFRecordDataset
  then moves on to the next file), and a block of records that does not parse is dropped;
- the bytes of the records that were read and parsed are added up per file, and at the end
  of the file they must make its size (taken when the dataset is built); otherwise a
  `tf.debugging.Assert` fails with a message naming the file and saying how to regenerate it.

That error comes out of any iteration: a `for` loop, a `keras.Model.fit`, the trainer's
`tf.function`. As TensorFlow raises it, it is an `InvalidArgumentError`; `reading_errors`
(around a loop) and the iterators of the datasets `Problem.dataset` / `Problem.examples` return
(`reported`) re-raise it as `CorruptDataError` with the same message. An error that does not
carry that message (a `DataLossError` from elsewhere, a parse error in a custom decoder) is
diagnosed by reading the problem's shards once, each record's checksum, the file's bytes and
the parse of its examples (`find_bad_shard`).

`check_shards` runs that check over whole splits up front (after copying a data_dir, say);
nothing calls it before training, since reading the data checks it anyway.
"""
import contextlib
import re
import traceback

import tensorflow as tf

from t2t_lite import errors

# Bytes of a TFRecord record besides its data: the length (8), its CRC (4), the data's CRC (4).
RECORD_OVERHEAD = 16
READ_BUFFER_BYTES = 1 << 18


def without_autograph(fn):
  """Marks a dataset function of the data path to be traced as it is, without autograph.

  tf.data converts every function it is given with autograph, and converting the data path's
  own functions (reading, packing, bucketing, padding: none has Python control flow on
  tensors) took ~1.1 s of building transformer_tiny's training pipeline and ~0.8 s of its
  first evaluation pipeline on 2 cores. Functions that come from a problem
  (preprocess_example, decoders) are still converted.
  """
  return tf.autograph.experimental.do_not_convert(fn)


# The message of a corrupt shard, whoever builds it (in-graph or here); REPORT_RE finds it
# inside a TensorFlow error message.
_REPORT = "data shard %s is corrupt or truncated (%s). %s"
REPORT_RE = re.compile(r"data shard .*? is corrupt or truncated \(.*?\)\. .*?with --overwrite\.")


class ShardReport:
  """How a corrupt shard of one problem is reported: the problem and how to regenerate it.

  Args:
    problem_name: the problem the shard belongs to (None: not known).
    datagen_command: the command that regenerates the problem's data in its data_dir.
  """

  def __init__(self, problem_name=None, datagen_command=None):
    self.problem_name = problem_name
    self.datagen_command = datagen_command

  def _parts(self):
    of = " of problem %s" % self.problem_name if self.problem_name else ""
    if self.datagen_command:
      advice = ("Delete it and run `%s` (it regenerates missing shards), or run that with "
                "--overwrite." % self.datagen_command)
    else:
      advice = ("Delete it and run t2t-datagen again (it regenerates missing shards), or run "
                "it with --overwrite.")
    return of, advice

  def message(self, path, detail):
    """The message naming the shard at `path`; `detail` says what is wrong with it."""
    of, advice = self._parts()
    return _REPORT % (path + of, detail, advice)

  def graph_message(self, path, detail):
    """`message` as a string tensor, for a path and a detail that are tensors."""
    of, advice = self._parts()
    head, after_path, after_detail = _REPORT.split("%s")[:3]
    return tf.strings.join([head, path, of + after_path, detail, after_detail + advice])

  def error(self, path, detail):
    return errors.CorruptDataError(self.message(path, detail))


# -- checking while reading --------------------------------------------------------------------

def file_sizes(paths):
  """The size in bytes of each file (what a complete read of it adds up to)."""
  return [int(tf.io.gfile.stat(p).length) for p in paths]


def read_checked(path, size, parse_block, block_size, report):
  """The parsed blocks of one shard; iterating fails at the file's end unless all of it read.

  Args:
    path: the file (a scalar string tensor inside an interleave).
    size: its size in bytes, taken when the dataset was built.
    parse_block: a function of a vector of serialized records -> parsed features.
    block_size: records per block.
    report: a ShardReport (the message names `path`).

  Returns:
    A dataset of parsed blocks (the last one, an empty block, marks the file's end).
  """
  blocks = tf.data.TFRecordDataset(path, buffer_size=READ_BUFFER_BYTES).ignore_errors()
  blocks = blocks.batch(block_size).concatenate(
      tf.data.Dataset.from_tensors(tf.zeros([0], tf.string)))  # batch never yields [0]
  specs = []

  @without_autograph
  def parse(records):
    parsed = parse_block(records)
    specs[:] = [tf.nest.map_structure(tf.type_spec_from_value, parsed)]
    num_bytes = tf.reduce_sum(tf.strings.length(records) + RECORD_OVERHEAD)
    # Plain tensors (a ragged feature's values and row splits) cross the next function for
    # free; composite tensors would be encoded and decoded.
    return (tuple(tf.nest.flatten(parsed, expand_composites=True)),
            tf.cast(num_bytes, tf.int64), tf.size(records))

  # A block that fails to parse is dropped: its bytes never add up. The blocks must stay in
  # order so that the empty block comes last, whatever the pipeline's `deterministic` option
  # says (tf.data's map_parallelization would make a plain map follow it).
  blocks = blocks.map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True).ignore_errors()
  size = tf.cast(size, tf.int64)
  # Built once per file, not per block.
  # (No quote marks: tf.debugging.Assert escapes them.)
  message = report.graph_message(path, tf.strings.join([
      "the records that pass their checksums and parse as examples of this problem do not "
      "fill its ", tf.strings.as_string(size), " bytes"]))

  @without_autograph
  def add_up(total, block):
    components, num_bytes, num_records = block
    total += num_bytes
    # num_records == 0: the empty block after the file's last one.
    ok = tf.logical_or(num_records > 0, tf.equal(total, size))
    with tf.control_dependencies([tf.debugging.Assert(ok, [message])]):
      total = tf.identity(total)
    return total, tf.nest.pack_sequence_as(specs[0], list(components), expand_composites=True)

  return blocks.scan(tf.constant(0, tf.int64), add_up)


# -- checking on the host ----------------------------------------------------------------------

def shard_problem(path, spec=None):
  """What is wrong with one shard, read through once on the host.

  Args:
    path: the file.
    spec: a `tf.io.parse_example` spec its records must parse with (None: not parsed).

  Returns:
    (number of records, None) for a good shard, else (records read, detail): detail says
    what is wrong (a checksum, a cut, records that do not parse).
  """
  count = num_bytes = 0
  try:
    for batch in tf.data.TFRecordDataset(path, buffer_size=1 << 20).batch(4096):
      if spec is not None:
        try:
          tf.io.parse_example(batch, spec)
        except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
          return count, ("records %d to %d pass their checksums but are not all "
                         "tf.train.Examples of this problem"
                         % (count, count + int(batch.shape[0])))
      count += int(batch.shape[0])
      num_bytes += int(tf.reduce_sum(tf.strings.length(batch))) + RECORD_OVERHEAD * int(
          batch.shape[0])
  except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
    return count, _first_line(e.message)
  except tf.errors.NotFoundError:
    return count, "it is gone"
  size = file_sizes([path])[0]
  if num_bytes != size:
    return count, ("it ends inside a record: %d good records take %d of its %d bytes"
                   % (count, num_bytes, size))
  return count, None


def _first_line(message):
  """The first line of a TensorFlow error message without its op and function names."""
  line = message.strip().splitlines()[0] if message.strip() else ""
  line = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\]( name: \S*)?", "", line)
  return " ".join(line.split())


def check_shard(path, spec=None, report=None):
  """The number of records of one shard (checksums, size and, given `spec`, the parse).

  Raises:
    CorruptDataError naming the file when it is truncated or corrupt.
  """
  count, detail = shard_problem(path, spec)
  if detail:
    raise (report or ShardReport()).error(path, detail)
  return count


def _reading_spec(problem):
  spec = problem.example_reading_spec()
  return spec[0] if isinstance(spec, tuple) else spec


def _splits(problem, splits):
  return splits or [s["split"] for s in problem.dataset_splits()]


def report_for(problem, data_dir):
  return ShardReport(problem.name, problem.datagen_command(data_dir))


def check_shards(problem, data_dir, splits=None):
  """Reads every record of every shard of the splits; returns {split: number of examples}.

  Raises:
    DataNotFoundError: a split is missing.
    CorruptDataError: a shard is truncated or corrupt, or holds records that are not this
      problem's examples (the message names it).
  """
  spec, report = _reading_spec(problem), report_for(problem, data_dir)
  return {split: sum(check_shard(p, spec, report) for p in problem.data_files(data_dir, split))
          for split in _splits(problem, splits)}


def _shards(problem, data_dir, splits):
  for split in _splits(problem, splits):
    try:
      paths = problem.data_files(data_dir, split)
    except errors.T2TUserError:
      continue
    yield from paths


def find_bad_shard(problem, data_dir, splits=None):
  """(path, detail) of the first bad shard of the splits present, or None."""
  spec = _reading_spec(problem)
  for path in _shards(problem, data_dir, splits):
    _, detail = shard_problem(path, spec)
    if detail:
      return path, detail
  return None


def find_unparsable_shard(problem, data_dir, splits=None):
  """The first shard of the splits that does not read as the problem's examples, or None."""
  bad = find_bad_shard(problem, data_dir, splits)
  return bad[0] if bad else None


# -- turning reading errors into CorruptDataError ----------------------------------------------

def _raised_by_tensorflow(error):
  """True when an exception comes out of TensorFlow's own code (its last frame)."""
  frames = traceback.extract_tb(error.__traceback__)
  return bool(frames) and "tensorflow" in frames[-1].filename


def _looks_like_parse_error(message):
  message = message.lower()
  return "parse" in message or "record" in message or "corrupt" in message


def corrupt_data_error(problem, data_dir, splits, error):
  """The CorruptDataError that an error raised while reading a problem's data stands for.

  Returns:
    A CorruptDataError naming the bad shard, or None when `error` is no data error.
  """
  if isinstance(error, UnicodeDecodeError):
    # A record that passes its checksum but does not parse: TensorFlow fails to decode its own
    # error message quoting the bytes.
    if not _raised_by_tensorflow(error):
      return None
    message = str(error)
  elif isinstance(error, tf.errors.OpError):
    message = error.message
    found = REPORT_RE.search(message)
    if found:  # the pipeline's own check (any error type a runtime wraps it in) says it all
      return errors.CorruptDataError(found.group(0))
    if not (isinstance(error, tf.errors.DataLossError) or (
        isinstance(error, tf.errors.InvalidArgumentError) and
        _looks_like_parse_error(message))):
      return None
  else:
    return None
  bad = find_bad_shard(problem, data_dir, splits)
  if bad:
    return report_for(problem, data_dir).error(*bad)
  return errors.CorruptDataError(
      "reading the data of problem %s in %s failed: %s (every shard reads fine on its own; "
      "regenerate the data with %s --overwrite)"
      % (problem.name, data_dir, _first_line(message) or type(error).__name__,
         problem.datagen_command(data_dir)))


@contextlib.contextmanager
def reading_errors(problem, data_dir, splits=None):
  """Re-raises a data error raised inside as CorruptDataError naming the bad shard."""
  try:
    yield
  except (tf.errors.OpError, UnicodeDecodeError) as e:
    error = corrupt_data_error(problem, data_dir, splits, e)
    if error is None:
      raise
    raise error from None


# -- datasets whose iterators report corrupt shards --------------------------------------------

# Private tf.data classes (TensorFlow has no public hook into a dataset's iterator); without
# them, datasets are returned as they are and errors keep TensorFlow's types.
try:
  # pylint: disable=g-direct-tensorflow-import
  from tensorflow.python.data.ops import dataset_ops as _dataset_ops
  from tensorflow.python.data.ops import iterator_ops as _iterator_ops
  # pylint: enable=g-direct-tensorflow-import
except ImportError:  # pragma: no cover
  _dataset_ops = _iterator_ops = None


if _dataset_ops is not None:

  class _ReportingIterator(_iterator_ops.OwnedIterator):
    """An iterator of a `reported` dataset: a corrupt shard raises CorruptDataError (eager)."""

    def __init__(self, dataset, reporter):
      super().__init__(dataset)
      self._reporter = reporter

    def _next_internal(self):
      if not tf.executing_eagerly():
        return super()._next_internal()
      try:
        return super()._next_internal()
      except (tf.errors.OpError, UnicodeDecodeError) as e:  # OutOfRangeError passes
        error = self._reporter(e)
        if error is None:
          raise
        raise error from None

  class _ReportingDataset(_dataset_ops.UnaryUnchangedStructureDataset):
    """The same dataset (the same graph); only its eager iterators differ."""

    def __init__(self, dataset, reporter):
      self._reporter = reporter
      super().__init__(dataset, dataset._variant_tensor)  # pylint: disable=protected-access

    def __iter__(self):
      if tf.executing_eagerly():
        with tf.device(self._variant_tensor.device):
          return _ReportingIterator(self, self._reporter)
      return super().__iter__()


def reported(dataset, problem, data_dir, splits=None):
  """`dataset`, whose eager iterators raise CorruptDataError for a corrupt shard of the splits.

  Transformations of it (`take`, `map`, ...) are plain datasets: their errors still carry the
  message naming the shard, as an InvalidArgumentError (see `reading_errors`).
  """
  if _dataset_ops is None:  # pragma: no cover
    return dataset
  return _ReportingDataset(
      dataset, lambda e: corrupt_data_error(problem, data_dir, splits, e))
