"""Decoding a model: the decode hparams, `decode_ids` (a graph function) and `Decoder`.

`decode_ids(model, inputs)` runs a whole search for a batch: the encoder once, its keys and
values projected once into the cache (`model.init_decode_cache`), then greedy or beam search
over `model.decode_step` in one `tf.while_loop`. `Decoder` wraps it in a `tf.function`
(optionally XLA-compiled) and batches lists of id sequences (text in and out is
`t2t_lite.decoding.runner`'s `encode_lines` / `format_decodes`):

    decoder = Decoder(model, decode_hparams("beam_size=4,alpha=0.6"))
    decoder.decode([[3, 2, 1], [2, 1]])        # ids in, ids out (EOS stripped)

Decode length: an input of n ids (EOS included) gets at most n + `extra_length` output
positions (EOS included); decoding stops earlier once every sequence has ended with EOS.
For a decoder-only model (`has_inputs` False) the input is a prompt of n ids that the output
continues, with the same bound n + extra_length, and only the continuation is returned.
"""
import functools

import numpy as np
import tensorflow as tf

from t2t_lite.constants import EOS_ID, PAD_ID
from t2t_lite.decoding import search
from t2t_lite.errors import ConfigError, HParamsError
from t2t_lite.hparams import HParams
from t2t_lite.layers import dense as dense_lib
from t2t_lite.layers import embedding as embedding_lib
from t2t_lite.layers.xla_context import in_xla_context
from t2t_lite.utils import hardware
# Batches are padded to a multiple of this length, so a tf.function sees few distinct shapes
# (padding does not change any result: every row has its own length limit).
_LENGTH_QUANTUM = 8


def decode_hparams(overrides=""):
  """The decoding settings (`--decode_hparams`), with `overrides` applied.

  Defaults (tensor2tensor's names and, except extra_length and batch_size, its values):

    beam_size=4          hypotheses kept by beam search; 1 is greedy search.
    alpha=0.6            length penalty exponent: scores are log p / ((5 + len) / 6) ** alpha.
    extra_length=50      an input of n ids decodes at most n + 50 positions (tensor2tensor's
                         model default decode_length; its decode_hparams used 100).
    return_beams=False   write every beam (tab-separated), not only the best one.
    write_beam_scores=False   with return_beams, write "decode<TAB>score" for each beam.
    batch_size=32        sentences per batch (tensor2tensor: 0, meaning its own default 32).
    num_samples=1000     examples of the dev split decoded when there is no decode file
                         (-1: all of them).
    max_input_size=-1    input lines longer than this many ids are cut (-1: never).
    xla=False            compile the search with XLA (jit_compile).
    shards=0             with xla on a machine without GPU or TPU, split each batch into up to
                         this many equal shards (at least 8 rows each) decoded at the same
                         time; 0: one per CPU core TensorFlow may use; 1: never split.
                         (tensor2tensor has no such setting.) XLA runs a small decoding step
                         on one core, so concurrent shards are what uses the others: a batch
                         of 32 decodes ~1.3x faster on 2 cores than with shards=1, matmul
                         blocks and all (benchmarks/peer.py).
    matmul_blocks=0      with xla on a machine without GPU or TPU, compute each matmul of a
                         decoding step as up to this many column blocks, which XLA runs on
                         different cores (`layers.dense.column_parallel`); 0: one per CPU
                         core TensorFlow may use; 1: never. (tensor2tensor has no such
                         setting.) XLA runs a step's small matmuls on one core otherwise.
    log_results=True     log a few inputs, decodes and targets of the dev split.
    early_stop=True      beam search: a row with beam_size finished hypotheses stops when
                         its best alive one scores no better at the current length (most
                         toolkits' rule); false: tensor2tensor's exact bound, its score at the
                         row's limit, which keeps rows going for steps past their ends
                         (see `search.beam_search`).

  Args:
    overrides: a `--decode_hparams` string, e.g. "beam_size=1,extra_length=20".

  Returns:
    An HParams.

  Raises:
    HParamsError: for a malformed string, an unknown name or a bad value.
  """
  hp = HParams(beam_size=4, alpha=0.6, extra_length=50, return_beams=False,
               write_beam_scores=False, batch_size=32, num_samples=1000, max_input_size=-1,
               xla=False, shards=0, matmul_blocks=0, log_results=True, early_stop=True)
  try:
    hp.parse(overrides or "")
  except HParamsError as e:
    raise HParamsError("--decode_hparams: %s" % e) from None
  if hp.beam_size < 1:
    raise HParamsError("--decode_hparams: beam_size must be >= 1 (1 is greedy search); got "
                       "%d." % hp.beam_size)
  if hp.extra_length < 1:
    raise HParamsError("--decode_hparams: extra_length must be >= 1; got %d." %
                       hp.extra_length)
  if hp.batch_size < 1:
    raise HParamsError("--decode_hparams: batch_size must be >= 1; got %d." % hp.batch_size)
  if hp.shards < 0:
    raise HParamsError("--decode_hparams: shards must be >= 0 (0: one per CPU core, 1: never "
                       "split); got %d." % hp.shards)
  if hp.matmul_blocks < 0:
    raise HParamsError("--decode_hparams: matmul_blocks must be >= 0 (0: one per CPU core, 1: "
                       "never split); got %d." % hp.matmul_blocks)
  return hp


# A shard holds at least this many rows: below it, the per-step overhead of a shard outweighs
# the core it adds.
_MIN_SHARD_ROWS = 8


def _cpu_cores(threads):
  """The CPU cores a TensorFlow thread pool of `threads` threads (0: its default) can use, or 1
  when a GPU or TPU is present (a device runs the whole batch at once)."""
  if tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"):
    return 1
  cores = hardware.cpu_cores()
  return max(1, min(cores, threads) if threads > 0 else cores)


def auto_shards():
  """How many shards `shards=0` means: the CPU cores TensorFlow's inter-op pool may use (1
  with a GPU or TPU)."""
  return _cpu_cores(tf.config.threading.get_inter_op_parallelism_threads())


def auto_matmul_blocks():
  """How many column blocks `matmul_blocks=0` means: the CPU cores TensorFlow's intra-op pool,
  which XLA's CPU runtime runs on, may use (1 with a GPU or TPU)."""
  return _cpu_cores(tf.config.threading.get_intra_op_parallelism_threads())


def check_decodable(model):
  """Raises ConfigError unless `model` has the incremental decoding interface."""
  missing = [name for name in ("init_decode_cache", "decode_step")
             if not callable(getattr(model, name, None))]
  if getattr(model, "has_inputs", True) and not callable(getattr(model, "encode", None)):
    missing.insert(0, "encode")
  if missing:
    raise ConfigError(
        "model %s cannot be decoded: it has no %s (t2t-decoder needs a model with encode, "
        "init_decode_cache and decode_step, such as transformer)." %
        (model.__name__ if isinstance(model, type) else type(model).__name__,
         ", ".join(missing)))


def encode_in_pairs(model, inputs, lengths):
  """`model.encode(inputs)` with the inputs two to a row: the longest with the shortest, the
  second longest with the second shortest, and so on, each a segment of its row
  (`encode`'s segmentation and positions, as in packed training data). A batch of mixed
  lengths padded to its longest is about half padding, which the encoder's matmuls compute
  like real tokens; paired, its rows are about as long as the longest input and half as many.

  Args:
    model: a model whose `encode(inputs, segmentation=, position=)` reads packed rows.
    inputs: int32 [B, T], each row's tokens first, then PAD_ID.
    lengths: int32 [B], the tokens of each row.

  Returns:
    (encoder_output [B, T, hidden], mask bool [B, T]) as `model.encode(inputs)` returns them,
    with zeros at the padding.
  """
  batch, width = tf.shape(inputs)[0], tf.shape(inputs)[1]
  half = (batch + 1) // 2
  # Longest first; an odd batch gets an empty row (index `batch`) to pair with.
  order = tf.concat([tf.argsort(lengths, direction="DESCENDING", stable=True),
                     tf.fill([2 * half - batch], batch)], 0)
  first, second = order[:half], tf.reverse(order[half:], [0])
  all_lengths = tf.concat([lengths, [0]], 0)
  first_length = tf.gather(all_lengths, first)
  row_length = first_length + tf.gather(all_lengths, second)
  column = tf.range(tf.reduce_max(row_length))[None, :]  # [1, W]
  in_first = column < first_length[:, None]
  real = column < row_length[:, None]
  source_row = tf.where(in_first, first[:, None], second[:, None])
  position = tf.where(real, tf.where(in_first, column, column - first_length[:, None]), 0)
  padded = tf.concat([inputs, tf.zeros([1, width], inputs.dtype)], 0)
  ids = tf.where(real, tf.gather_nd(padded, tf.stack(
      [source_row, tf.minimum(position, width - 1)], -1)), PAD_ID)
  segmentation = tf.where(in_first, 1, tf.where(real, 2, 0))
  packed, _ = model.encode(ids, training=False, segmentation=segmentation, position=position)
  # Row r of the batch is at (pair row, offset) of the packed output.
  pair_row = tf.tensor_scatter_nd_update(
      tf.zeros([batch + 1], tf.int32), tf.concat([first, second], 0)[:, None],
      tf.concat([tf.range(half)] * 2, 0))
  offset = tf.tensor_scatter_nd_update(
      tf.zeros([batch + 1], tf.int32), second[:, None], first_length)
  offset = tf.tensor_scatter_nd_update(offset, first[:, None], tf.zeros([half], tf.int32))
  mask = tf.not_equal(inputs, PAD_ID)
  columns = tf.minimum(offset[:batch, None] + tf.range(width)[None, :], tf.shape(packed)[1] - 1)
  output = tf.gather_nd(packed, tf.stack(
      [tf.broadcast_to(pair_row[:batch, None], tf.shape(columns)), columns], -1))
  return output * tf.cast(mask, output.dtype)[:, :, None], mask


def decode_ids(model, inputs, beam_size=1, alpha=0.6, extra_length=50, eos_id=EOS_ID,
               early_stop=True, matmul_blocks=1, dynamic=None):
  """Decodes a batch with the model's cache: a function of tensors, for tf.function / XLA.

  Args:
    model: a built model with `encode` (when it has inputs), `init_decode_cache` and
      `decode_step` (the Transformer).
    inputs: int [B, T] padded with 0: the encoder inputs (each ending with EOS, as in the
      training data), or for a decoder-only model the prompts (without EOS).
    beam_size: 1 for greedy search, else beam search with this many beams.
    alpha: the length penalty exponent of beam search.
    extra_length: a row of n ids decodes at most n + extra_length positions.
    eos_id: the id that ends a sequence (None: never stop before the limit).
    early_stop: beam search's stopping rule (see `search.beam_search`).
    matmul_blocks: the column blocks of each matmul of a search step
      (`layers.dense.column_parallel`; 1: none).
    dynamic: whether the search drops rows as they finish and, for a model with
      `supports_growing_cache`, grows its self-attention cache a position per step instead of
      preallocating it for the longest decode (`search.beam_search`); the same results.
      None (the default): outside XLA, which needs static shapes. A batch of mixed lengths
      then costs about what its rows decoded one at a time would, without their per-call
      overhead: what a server's dynamic batching relies on.

  Returns:
    {"outputs": int32 [B, K, T + extra_length] (K = beam_size, best first; EOS kept, then
     0), "scores": float32 [B, K] (greedy: the sum of log-probabilities; beam search: that
     divided by the length penalty), "prefix_length": int32 [B], the prompt length at the
     front of each output (0 for models with inputs)}.
  """
  inputs = tf.cast(inputs, tf.int32)
  batch_size = tf.shape(inputs)[0]
  lengths = tf.reduce_sum(tf.cast(tf.not_equal(inputs, PAD_ID), tf.int32), axis=1)
  decode_length = tf.shape(inputs)[1] + int(extra_length)
  max_lengths = lengths + int(extra_length)
  if dynamic is None:
    dynamic = not in_xla_context()
  grows = bool(dynamic) and getattr(model, "supports_growing_cache", False)
  step_fn = functools.partial(model.decode_step, cache_grows=True) if grows else model.decode_step
  cache_length = None if grows else decode_length
  if model.has_inputs:
    if dynamic and getattr(model, "reads_packed_features", False):
      encoder_output, encoder_mask = encode_in_pairs(model, inputs, lengths)
    else:
      encoder_output, encoder_mask = model.encode(inputs, training=False)
    cache = model.init_decode_cache(batch_size, cache_length, encoder_output, encoder_mask)
    prefix, prefix_length = None, tf.zeros_like(lengths)
  else:
    cache = model.init_decode_cache(batch_size, cache_length)
    prefix, prefix_length = inputs, lengths
  # Entered here, outside the search's loop (the encoder's and the cache's matmuls are big
  # enough to use every core already): the kernels' blocks are sliced, and outside XLA (which
  # picks its own layouts) the output embedding transposed, once per call.
  with dense_lib.column_parallel(model, matmul_blocks), \
      embedding_lib.transposed_output_weights([] if in_xla_context() else model):
    if int(beam_size) <= 1:
      ids, scores = search.greedy_search(
          step_fn, batch_size, decode_length, cache, eos_id=eos_id, max_lengths=max_lengths,
          prefix=prefix, prefix_length=prefix_length, dynamic=bool(dynamic))
      ids, scores = ids[:, None, :], scores[:, None]
    else:
      ids, scores = search.beam_search(
          step_fn, batch_size, decode_length, cache, int(beam_size), alpha=alpha,
          eos_id=eos_id, max_lengths=max_lengths, prefix=prefix, prefix_length=prefix_length,
          early_stop=early_stop, dynamic=bool(dynamic),
          shared_cache_keys=getattr(model, "beam_shared_cache_keys", ()))
  return {"outputs": ids, "scores": scores, "prefix_length": prefix_length}


def strip_ids(ids, prefix_length=0, eos_id=EOS_ID):
  """The ids of one decode without the prompt, and without EOS, what follows it and padding."""
  out = []
  for i in list(ids)[int(prefix_length):]:
    i = int(i)
    if eos_id is not None and i == eos_id:
      break
    if i != PAD_ID:
      out.append(i)
  return out


class Decoder:
  """Batched cached decoding of a model, from id lists or text.

  Args:
    model: a built, decodable model (see `decode_ids`).
    hparams: decode hparams from `decode_hparams()` (default: its defaults).
    eos_id: the id that ends a sequence.

  Example:

  >>> decoder = Decoder(model, decode_hparams("beam_size=1"))
  >>> decoder.decode([[3, 2, 1], [2, 1]])        # ids in, ids out (EOS stripped)
  [[[2, 3]], [[2]]]
  """

  def __init__(self, model, hparams=None, eos_id=EOS_ID):
    check_decodable(model)
    self.model = model
    self.hparams = hparams if hparams is not None else decode_hparams()
    self.eos_id = eos_id
    hp = self.hparams
    beam_size, alpha, extra_length = int(hp.beam_size), float(hp.alpha), int(hp.extra_length)

    early_stop = bool(hp.early_stop)
    # Column blocks only under XLA: without it, TensorFlow's executor pays more per extra op
    # than a second core returns (layers.dense.column_parallel).
    matmul_blocks = (hp.matmul_blocks or auto_matmul_blocks()) if hp.xla else 1

    def run(inputs):
      return decode_ids(model, inputs, beam_size, alpha, extra_length, eos_id, early_stop,
                        matmul_blocks)

    spec = tf.TensorSpec([None, None], tf.int32)
    # No autograph: the search is explicit tf.while_loops, the model plain Python over tensors.
    self._run = tf.function(run, input_signature=[spec], jit_compile=bool(hp.xla) or None,
                            autograph=False)
    # Without XLA, TensorFlow's executor already spreads a step's ops over the cores, and
    # shards measured no faster.
    self.max_shards = 1 if not hp.xla else (hp.shards or auto_shards())
    self._sharded_runs = {}

  def _sharded_run(self, num_shards):
    """A tf.function decoding `num_shards` equal shards: independent calls of the XLA search,
    which TensorFlow's executor runs at the same time on its inter-op threads."""
    if num_shards not in self._sharded_runs:
      single = self._run

      def run(*shards):
        return [single(shard) for shard in shards]

      self._sharded_runs[num_shards] = tf.function(
          run, input_signature=[tf.TensorSpec([None, None], tf.int32)] * num_shards,
          autograph=False)
    return self._sharded_runs[num_shards]

  def decode_batch(self, inputs):
    """One padded batch: int [B, T] -> the numpy arrays of `decode_ids`.

    With several shards (decode hparam `shards`) the rows are split into equal shards (the
    last padded with empty rows, which are dropped) decoded at the same time; every row
    decodes exactly as in one batch, since each has its own length limit.
    """
    inputs = np.asarray(inputs, np.int32)
    rows = inputs.shape[0]
    num_shards = min(self.max_shards, rows // _MIN_SHARD_ROWS)
    if num_shards <= 1:
      result = self._run(tf.convert_to_tensor(inputs))
      return {k: v.numpy() for k, v in result.items()}
    shard_rows = -(-rows // num_shards)
    padded = np.zeros([shard_rows * num_shards, inputs.shape[1]], np.int32)
    padded[:rows] = inputs
    results = self._sharded_run(num_shards)(
        *[tf.convert_to_tensor(part) for part in np.split(padded, num_shards)])
    return {k: np.concatenate([r[k].numpy() for r in results])[:rows] for k in results[0]}

  def decode(self, id_lists):
    """Decodes id sequences in batches (longest first); results in the input order.

    Args:
      id_lists: a list of lists of ids (inputs ending with EOS, or prompts).

    Returns:
      A list with, per input, a list of `beam_size` (1 for greedy) id lists, best first,
      each without prompt, EOS or padding.
    """
    return [beams for beams, _ in self.decode_with_scores(id_lists)]

  def decode_with_scores(self, id_lists):
    """Like `decode`, with each input's beam scores: a list of (beams, scores)."""
    hp = self.hparams
    id_lists = [list(ids) for ids in id_lists]
    order = sorted(range(len(id_lists)), key=lambda i: -len(id_lists[i]))
    results = [None] * len(id_lists)
    for start in range(0, len(order), hp.batch_size):
      chunk = order[start:start + hp.batch_size]
      longest = max(1, max(len(id_lists[i]) for i in chunk))
      width = -(-longest // _LENGTH_QUANTUM) * _LENGTH_QUANTUM
      batch = np.zeros([len(chunk), width], np.int32)
      for row, i in enumerate(chunk):
        batch[row, :len(id_lists[i])] = id_lists[i]
      out = self.decode_batch(batch)
      for row, i in enumerate(chunk):
        beams = [strip_ids(seq, out["prefix_length"][row], self.eos_id)
                 for seq in out["outputs"][row]]
        results[i] = (beams, [float(s) for s in out["scores"][row]])
    return results
