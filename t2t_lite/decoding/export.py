"""A SavedModel that decodes raw strings: text in, text out, no t2t_lite needed to serve it.

    task = Task(problem, "transformer", hparams, data_dir)
    model, _ = task.restore_for_inference(output_dir)
    export_decoder(task, model, decode_hparams("beam_size=4"), "/tmp/export")

    # anywhere with TensorFlow (no t2t_lite import):
    loaded = tf.saved_model.load("/tmp/export")
    loaded.signatures["serving_default"](inputs=tf.constant(["1 0 1 1"]))
    # {"outputs": [b"1 1 0 1"], "scores": [-0.01]}

The serving signature `serving_default` (also the `serve` function):

    inputs:  tf.string [batch], one raw input line each (as t2t-decoder reads them)
    outputs: tf.string [batch], the best decode
             float32 [batch] "scores", its score
             with return_beams: tf.string [batch, beam_size] "beams" and float32
             [batch, beam_size] "beam_scores", best first

The decode settings (beam_size, alpha, extra_length, return_beams) are fixed at export time.
Strings are encoded and decoded inside the graph, so the problem's encoders must be
expressible in TensorFlow ops. Supported:

- `SymbolEncoder` (the algorithmic problems) and `TokenTextEncoder`: whitespace-separated
  tokens looked up in a `tf.lookup.StaticHashTable` (an unknown token fails the request with
  an InvalidArgument error naming it, or maps to the encoder's replace_oov token);
- `TextEncoder`: whitespace-separated integers (`tf.strings.to_number`);
- `ByteTextEncoder`: UTF-8 bytes (`tf.strings.bytes_split`); invalid UTF-8 in a decode is
  replaced by U+FFFD, as `ByteTextEncoder.decode` does;
- `SentencePieceEncoder`, through tensorflow-text's SentencePiece op (installed apart: the
  SavedModel then loads where tensorflow-text is imported, as in t2t-serve, or in a server
  built with its ops, as TensorFlow Serving is);
- any encoder that defines `encode_tf(strings) -> tf.RaggedTensor of int32 ids` and
  `decode_tf(ids: tf.RaggedTensor) -> tf.string tensor` (without EOS handling: the exporter
  adds EOS to inputs and strips it, padding and the prompt from outputs), and optionally
  `tf_resources()`, the TensorFlow objects those use, for the SavedModel to track.

Other encoders (e.g. `SubwordTextEncoder`) raise `ExportNotSupportedError`.

`export_logits_model` is the other exporter (t2t-trainer --export_saved_model): a batch's
feature dict in, the model's logits out.
"""
import os

import keras
import tensorflow as tf
from absl import logging

from t2t_lite import output_dir as output_dir_lib
from t2t_lite.constants import EOS_ID, PAD_ID
from t2t_lite.data import packing
from t2t_lite.data import text_encoder
from t2t_lite.decoding import decoder as decoder_lib
from t2t_lite.layers import embedding as embedding_lib
from t2t_lite.errors import ConfigError


class ExportNotSupportedError(ConfigError):
  """The problem's vocabulary cannot be expressed in TensorFlow ops, so no string SavedModel."""


def _same_method(encoder, cls, *names):
  return all(getattr(type(encoder), n, None) is getattr(cls, n) for n in names)


class InGraphCodec:
  """A problem's encoder as TensorFlow ops: `encode` strings [B] -> ragged ids [B, None] (no
  EOS), `decode` ragged ids [..., None] -> strings [...].

  Args:
    encoder: a text encoder of `t2t_lite.data.text_encoder` (see the module docstring for the
      supported ones) or one with `encode_tf` / `decode_tf`.
    role: "inputs" or "targets", for the error message.

  Raises:
    ExportNotSupportedError: the encoder cannot be expressed in TensorFlow ops.

  Example:

  >>> codec = InGraphCodec(text_encoder.SymbolEncoder(2), "inputs")
  >>> codec.encode(tf.constant(["1 0 1"]))              # <tf.RaggedTensor [[3, 2, 3]]>
  >>> codec.decode(tf.ragged.constant([[3, 2]]))        # [b"1 0"]
  """

  def __init__(self, encoder, role):
    self.kind = None
    self.table = None
    self.custom = None
    if callable(getattr(encoder, "encode_tf", None)) and callable(
        getattr(encoder, "decode_tf", None)):
      self.kind = "custom"
      self.custom = encoder
      try:
        self.resources()  # an encoder whose ops need a missing package says so now
      except ConfigError as e:
        raise ExportNotSupportedError("--export_saved_model: %s" % e) from None
    elif isinstance(encoder, text_encoder.ByteTextEncoder) and _same_method(
        encoder, text_encoder.ByteTextEncoder, "encode", "decode"):
      self.kind = "bytes"
      self.tokens = tf.constant(["", ""] + [bytes([b]) for b in range(256)])
    elif isinstance(encoder, text_encoder.SymbolEncoder) and _same_method(
        encoder, text_encoder.SymbolEncoder, "encode", "decode_list"):
      self._token_table(encoder.decode_list(range(encoder.vocab_size)), None)
    elif isinstance(encoder, text_encoder.TokenTextEncoder) and _same_method(
        encoder, text_encoder.TokenTextEncoder, "encode", "decode_list"):
      vocab = encoder.decode_list(range(encoder.vocab_size), strip_extraneous=False)
      oov = getattr(encoder, "_replace_oov", None)
      self._token_table(vocab, None if oov is None else vocab.index(oov), reserved=True)
    elif type(encoder) is text_encoder.TextEncoder:  # pylint: disable=unidiomatic-typecheck
      self.kind = "integers"
      self.num_reserved = encoder.num_reserved_ids
    if self.kind is None:
      raise ExportNotSupportedError(
          "--export_saved_model: the %s vocabulary of this problem (%s) cannot be expressed "
          "in TensorFlow ops, so a SavedModel taking raw strings is not supported for it "
          "(supported: symbol, token, integer and byte encoders, or an encoder with "
          "encode_tf/decode_tf)." % (role, type(encoder).__name__))

  def _token_table(self, names, oov_id, reserved=False):
    """names: the token of each id >= 2 (SymbolEncoder) or of every id (TokenTextEncoder)."""
    self.kind = "tokens"
    if reserved:
      tokens = list(names)
    else:
      tokens = ["", ""] + list(names)
    start = text_encoder.NUM_RESERVED_TOKENS
    keys = tf.constant(tokens[start:])
    values = tf.range(start, len(tokens), dtype=tf.int32)
    self.table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1)
    self.oov_id = oov_id
    self.tokens = tf.constant([""] * start + tokens[start:])

  def encode(self, strings):
    """strings [B] -> int32 ragged [B, None] of ids (no EOS)."""
    if self.kind == "custom":
      return tf.cast(self.custom.encode_tf(strings), tf.int32)
    if self.kind == "bytes":
      # Latin-1 maps every byte to the code point of the same value.
      values = tf.strings.unicode_decode(strings, "ISO-8859-1")
      return values + text_encoder.NUM_RESERVED_TOKENS
    words = tf.strings.split(strings)
    if self.kind == "integers":
      numbers = tf.strings.to_number(words, tf.int32)
      return numbers + self.num_reserved
    ids = tf.ragged.map_flat_values(self.table.lookup, words)
    unknown = tf.equal(ids.flat_values, -1)
    if self.oov_id is not None:
      return tf.ragged.map_flat_values(lambda v: tf.where(tf.equal(v, -1), self.oov_id, v),
                                       ids)
    first_unknown = tf.cond(tf.reduce_any(unknown),
                            lambda: tf.boolean_mask(words.flat_values, unknown)[0],
                            lambda: tf.constant(""))
    check = tf.debugging.Assert(tf.logical_not(tf.reduce_any(unknown)),
                                ["unknown token in the input:", first_unknown])
    with tf.control_dependencies([check]):
      return tf.ragged.map_flat_values(tf.identity, ids)

  def decode(self, ids):
    """int32 ragged [..., None] of ids (no EOS, no padding) -> strings [...]."""
    if self.kind == "custom":
      return self.custom.decode_tf(ids)
    if self.kind == "integers":
      words = tf.ragged.map_flat_values(
          lambda v: tf.strings.as_string(v - self.num_reserved), ids)
      return tf.strings.reduce_join(words, axis=-1, separator=" ")
    size = tf.shape(self.tokens, out_type=tf.int32)[0]
    safe = tf.ragged.map_flat_values(lambda v: tf.clip_by_value(v, 0, size - 1), ids)
    words = tf.ragged.map_flat_values(lambda v: tf.gather(self.tokens, v), safe)
    if self.kind == "bytes":
      joined = tf.strings.reduce_join(words, axis=-1)
      return tf.strings.unicode_transcode(joined, "UTF-8", "UTF-8", errors="replace")
    return tf.strings.reduce_join(words, axis=-1, separator=" ")

  def resources(self):
    """The TensorFlow objects the SavedModel must track (lookup tables, tokenizers)."""
    if self.custom is not None:
      return list(getattr(self.custom, "tf_resources", list)())
    return [self.table] if self.table is not None else []


class _Tracked:
  """More objects for the SavedModel to keep (the transposed output embeddings)."""

  def __init__(self, objects):
    self.objects = objects

  def resources(self):
    return self.objects


def _decoded_ragged(ids, prefix_length, eos_id):
  """int32 [N, L] -> ragged [N, None]: after the prompt, before EOS, without padding."""
  positions = tf.range(tf.shape(ids)[-1])[None, :]
  before_eos = tf.equal(tf.cumsum(tf.cast(tf.equal(ids, eos_id), tf.int32), axis=-1), 0)
  keep = before_eos & (positions >= prefix_length[:, None]) & tf.not_equal(ids, PAD_ID)
  return tf.ragged.boolean_mask(ids, keep)


def make_serving_fn(task, model, decode_hp):
  """The (strings [B]) -> dict of tensors function the SavedModel serves, and the objects
  (its codecs, the transposed output embeddings) whose `resources()` the SavedModel keeps.

  Raises:
    ExportNotSupportedError: an encoder that cannot be expressed in TensorFlow ops.
  """
  decoder_lib.check_decodable(model)
  encoders = task.problem.feature_encoders(task.data_dir)
  if model.has_inputs:
    source = InGraphCodec(encoders["inputs"], "inputs")
  else:
    source = None
  target = InGraphCodec(encoders["targets"], "targets")
  if source is None:
    source = target
  beam_size, alpha = int(decode_hp.beam_size), float(decode_hp.alpha)
  extra_length, return_beams = int(decode_hp.extra_length), bool(decode_hp.return_beams)
  max_input_size = int(decode_hp.max_input_size)
  has_inputs = model.has_inputs
  output_tables = embedding_lib.transposed_output_copies(model)

  def serve(inputs):
    ids = source.encode(inputs)
    if max_input_size > 0:
      ids = ids[:, :max_input_size]
    if has_inputs:
      eos = tf.fill([ids.nrows(), 1], EOS_ID)
      ids = tf.concat([ids, tf.RaggedTensor.from_tensor(eos)], axis=1)
    dense = ids.to_tensor(PAD_ID)
    dense = tf.cond(tf.shape(dense)[1] > 0, lambda: dense,
                    lambda: tf.zeros([tf.shape(dense)[0], 1], tf.int32))
    with embedding_lib.transposed_output_weights(model, output_tables):
      result = decoder_lib.decode_ids(model, dense, beam_size, alpha, extra_length)
    outputs = result["outputs"]  # [B, K, L]
    shape = tf.shape(outputs)
    flat = tf.reshape(outputs, [shape[0] * shape[1], shape[2]])
    flat_prefix = tf.repeat(result["prefix_length"], shape[1])
    texts = target.decode(_decoded_ragged(flat, flat_prefix, EOS_ID))
    texts = tf.reshape(texts, shape[:2])
    out = {"outputs": texts[:, 0], "scores": result["scores"][:, 0]}
    if return_beams:
      out["beams"] = texts
      out["beam_scores"] = result["scores"]
    return out

  codecs = list({id(source): source, id(target): target}.values())
  return serve, codecs + [_Tracked(list(output_tables.values()))]


def _write_archive(archive, export_dir):
  """Writes `archive` to export_dir under a temporary name, then renames it over an older
  export, so a killed or failed export never leaves a directory that looks complete.

  Raises:
    OutputWriteError: it could not be written (the older export, if any, is kept).
  """
  tmp = "%s.tmp-%d" % (export_dir.rstrip("/"), os.getpid())
  tf_logger = tf.get_logger()
  level = tf_logger.level
  tf_logger.setLevel("WARNING")  # SavedModel writing logs a screenful at INFO
  try:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.rmtree(tmp)
    archive.write_out(tmp, verbose=False)
    if tf.io.gfile.exists(export_dir):
      tf.io.gfile.rmtree(export_dir)
    tf.io.gfile.rename(tmp, export_dir)
  except output_dir_lib.write_errors() as e:
    try:
      if tf.io.gfile.exists(tmp):
        tf.io.gfile.rmtree(tmp)
    except output_dir_lib.write_errors():
      pass
    kept = ("the previous export there is kept" if tf.io.gfile.exists(export_dir) else
            "the checkpoints are untouched")
    raise output_dir_lib.write_failed("the SavedModel", export_dir, e, kept) from None
  finally:
    tf_logger.setLevel(level)
  return export_dir


def export_decoder(task, model, decode_hp, export_dir):
  """Writes a SavedModel serving `make_serving_fn` as `serving_default` (and `serve`).

  Args:
    task: the Task the model was trained for (its problem's encoders, read from its
      data_dir, are built into the graph).
    model: a built, restored, decodable model.
    decode_hp: decode hparams (beam_size, alpha, extra_length, return_beams are fixed).
    export_dir: where to write it (an older export there is replaced).

  Returns:
    export_dir.

  Raises:
    ExportNotSupportedError: the problem's vocabulary cannot be expressed in TF ops.
  """
  serve, codecs = make_serving_fn(task, model, decode_hp)
  archive = keras.export.ExportArchive()
  archive.track(model)
  for codec in codecs:
    for resource in codec.resources():
      archive.track(resource)
  archive.add_endpoint("serve", serve,
                       input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
  _write_archive(archive, export_dir)
  logging.info("Exported a string-to-string decoder SavedModel to %s", export_dir)
  return export_dir


def export_logits_model(task, model, export_dir):
  """Writes a SavedModel whose `serving_default` maps a batch's feature dict (the task's
  feature spec, any batch size and length; one example a row, so without the features of
  packed training rows) to the model's logits."""
  signature = {name: tf.TensorSpec([None] * len(spec.shape), spec.dtype, name=name)
               for name, spec in task.feature_spec().items()
               if not packing.is_packing_feature(name)}
  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint("serve", lambda features: model(features, training=False),
                       input_signature=[signature])
  _write_archive(archive, export_dir)
  logging.info("Exported a SavedModel to %s", export_dir)
  return export_dir
