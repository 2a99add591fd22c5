"""A problem with a SentencePiece vocabulary exports as a strings-in/strings-out SavedModel
through tensorflow-text's SentencePiece op: the in-graph vocabulary encodes and decodes as the
Python one, the export decodes as the model does in process, and t2t_lite's server loads it,
importing tensorflow-text only where the export needs it (and saying so when it is missing)."""
import importlib.util
import json
import random
import re
import subprocess
import sys

import pytest
import tensorflow as tf

import t2t_lite.models  # noqa: F401  (registers the transformer)
from t2t_lite import decoding
from t2t_lite import registry
from t2t_lite.data.sentencepiece_encoder import SentencePieceEncoder
from t2t_lite.data.text_problems import Text2TextProblem
from t2t_lite.decoding import export as export_lib
from t2t_lite.layers import embedding as embedding_lib
from t2t_lite.serving import model as serving_model
from t2t_lite.task import Task
from test_data_text import CORPUS

# tensorflow-text is in the test extras; the tests that use it skip without it.
needs_tf_text = pytest.mark.skipif(importlib.util.find_spec("tensorflow_text") is None,
                                   reason="tensorflow-text is not installed")

LINES = ["the quick fox", "a stitch in time saves nine", "naïve café ✓"]


class _Pairs(Text2TextProblem):
  vocab_type = "sentencepiece"
  approx_vocab_size = 120
  num_train_shards = 1

  def generate_samples(self, data_dir, tmp_dir, split):
    for line in CORPUS if split == "train" else CORPUS[:8]:
      yield {"inputs": line, "targets": line.upper()}


@needs_tf_text
@pytest.mark.parametrize("byte_fallback", [False, True])
def test_in_graph_sentencepiece_matches_the_python_encoder(byte_fallback):
  enc = SentencePieceEncoder.build_from_corpus(CORPUS, 300 if byte_fallback else 80,
                                               byte_fallback=byte_fallback)
  codec = export_lib.InGraphCodec(enc, "inputs")
  lines = LINES + ["", "  two   spaces ", "THE FOX"]
  ids = codec.encode(tf.constant(lines))
  assert ids.to_list() == [enc.encode(line) for line in lines]
  # Decoding leaves out reserved ids and ids past the vocabulary, as the Python one does.
  rng = random.Random(0)
  id_lists = ids.to_list() + [[rng.randrange(enc.vocab_size + 4) for _ in range(12)]
                              for _ in range(20)]
  texts = codec.decode(tf.ragged.constant(id_lists, dtype=tf.int32)).numpy().tolist()
  assert [t.decode("utf-8") for t in texts] == [enc.decode(i) for i in id_lists]


def test_without_tensorflow_text_the_export_is_refused_in_one_line(monkeypatch):
  enc = SentencePieceEncoder.build_from_corpus(CORPUS, 80)
  monkeypatch.setitem(sys.modules, "tensorflow_text", None)  # import fails
  with pytest.raises(decoding.ExportNotSupportedError, match="pip install tensorflow-text"):
    export_lib.InGraphCodec(enc, "inputs")


@needs_tf_text
def test_export_decodes_as_the_model_and_the_server_loads_it(tmp_path, script_env):
  data_dir, export_dir = str(tmp_path / "data"), str(tmp_path / "export")
  problem = _Pairs()
  problem.generate_data(data_dir, str(tmp_path / "tmp"))
  hp = registry.hparams("transformer_tiny")
  hp.hidden_size, hp.filter_size, hp.num_heads, hp.num_hidden_layers = 16, 32, 2, 1
  task = Task(problem, "transformer", hp, data_dir)
  model = task.build_model(inference=True)
  # The export keeps a transposed copy of the output table alone, and the decoding steps read
  # it (a zero table gives zero logits).
  assert hp.shared_embedding_and_softmax_weights and model.input_embedding is not None
  copies = embedding_lib.transposed_output_copies(model)
  assert list(copies) == [id(model.target_embedding)]
  cache = model.init_decode_cache(1, None, *model.encode(tf.constant([[5, 6, 1]])))
  zeros = {id(model.target_embedding): tf.zeros_like(copies[id(model.target_embedding)])}
  with embedding_lib.transposed_output_weights(model, zeros):
    logits, _ = model.decode_step(tf.zeros([1], tf.int32), cache, 0, cache_grows=True)
  assert not tf.reduce_any(logits != 0.0)
  logits, _ = model.decode_step(tf.zeros([1], tf.int32), cache, 0, cache_grows=True)
  assert tf.reduce_any(logits != 0.0)
  decode_hp = decoding.decode_hparams("beam_size=2,extra_length=4")
  export_lib.export_decoder(task, model, decode_hp, export_dir)

  target = problem.feature_encoders(data_dir)["targets"]
  beams = decoding.Decoder(model, decode_hp).decode(decoding.encode_lines(task, LINES))
  expected = [target.decode(ids[0]) for ids in beams]
  assert [r["outputs"] for r in serving_model.ExportedModel(export_dir).predict(LINES)
          ] == expected

  # A fresh process: the server's loader imports tensorflow-text for this export only when
  # TensorFlow does not know its ops, and without tensorflow-text it says what to install.
  script = (
      "import json, sys\n"
      "sys.modules['tensorflow_text'] = None\n"
      "from t2t_lite.errors import ConfigError\n"
      "from t2t_lite.serving import model\n"
      "try:\n"
      "  model.ExportedModel(sys.argv[1])\n"
      "except ConfigError as e:\n"
      "  print('error:', e)\n"
      "del sys.modules['tensorflow_text']\n"
      "m = model.ExportedModel(sys.argv[1])\n"
      "print(json.dumps([r['outputs'] for r in m.predict(json.loads(sys.argv[2]))]))\n")
  proc = subprocess.run([sys.executable, "-c", script, export_dir, json.dumps(LINES)],
                        env=script_env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  lines = proc.stdout.strip().splitlines()
  assert lines[-2].startswith("error: ") and "pip install tensorflow-text" in lines[-2]
  assert re.search(r"Sentencepiece\w*Op", lines[-2])  # the first such op the load meets
  assert json.loads(lines[-1]) == expected
