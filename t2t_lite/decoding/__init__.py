"""t2t_lite.decoding: cached greedy and beam search, the decoder, and a string SavedModel.

    from t2t_lite import decoding, output_dir
    from t2t_lite.task import Task
    hparams = output_dir.load_hparams(run_dir, "transformer_tiny")
    task = Task("algorithmic_reverse_binary40", "transformer", hparams, data_dir)
    model, _ = decoding.restore_model(task, run_dir)
    decoder = decoding.Decoder(model, decoding.decode_hparams("beam_size=4,alpha=0.6"))
    decoding.decode_lines(decoder, task, ["1 0 0 1 1"])  # ["1 1 0 0 1"]

- `search`: `greedy_search` and `beam_search` over any `step_fn(ids, cache, index)` with a
  fixed-shape cache, each one `tf.while_loop` (tf.function, XLA, TPU); `length_penalty`.
- `decoder`: `decode_hparams` (the --decode_hparams defaults), `decode_ids` (a model's whole
  search as a graph function), `Decoder` (batches of ids in and out).
- `runner`: what t2t-decoder does with a Task: `restore_model`, `encode_lines` /
  `format_decodes` / `decode_lines` (text in and out), `decode_from_file`,
  `decode_interactive`, `decode_dataset` (dev-split metrics), `exact_match_rate`.
- `export`: `export_decoder`, a SavedModel mapping raw strings to decoded strings,
  `export_logits_model` (feature dict -> logits), and `InGraphCodec`, a problem's encoder as
  TensorFlow ops.
- `DevBleu`: sacreBLEU of decoded dev examples, the `dev_bleu` a `Trainer` is given for
  `--eval_bleu_samples` (training/ does not import decoding/: what it needs is passed in).
"""
from t2t_lite.decoding.decoder import Decoder
from t2t_lite.decoding.decoder import check_decodable
from t2t_lite.decoding.decoder import decode_hparams
from t2t_lite.decoding.decoder import decode_ids
from t2t_lite.decoding.decoder import strip_ids
from t2t_lite.decoding.export import ExportNotSupportedError
from t2t_lite.decoding.export import InGraphCodec
from t2t_lite.decoding.export import export_decoder
from t2t_lite.decoding.export import export_logits_model
from t2t_lite.decoding.export import make_serving_fn
from t2t_lite.decoding.runner import decode_dataset
from t2t_lite.decoding.runner import decode_from_file
from t2t_lite.decoding.runner import decode_interactive
from t2t_lite.decoding.runner import decode_lines
from t2t_lite.decoding.runner import default_decode_to_file
from t2t_lite.decoding.runner import dev_bleu
from t2t_lite.decoding.runner import encode_lines
from t2t_lite.decoding.runner import exact_match_rate
from t2t_lite.decoding.runner import format_decodes
from t2t_lite.decoding.runner import format_metrics
from t2t_lite.decoding.runner import read_decode_file
from t2t_lite.decoding.runner import restore_model
from t2t_lite.decoding.runner import sequence_metrics
from t2t_lite.decoding.search import beam_search
from t2t_lite.decoding.search import greedy_search
from t2t_lite.decoding.search import length_penalty

__all__ = [
    "Decoder", "DevBleu", "ExportNotSupportedError", "InGraphCodec", "beam_search",
    "check_decodable", "decode_dataset", "decode_from_file", "decode_hparams", "decode_ids",
    "decode_interactive", "decode_lines", "default_decode_to_file", "encode_lines",
    "exact_match_rate", "export_decoder", "export_logits_model", "format_decodes",
    "format_metrics", "greedy_search", "length_penalty", "make_serving_fn", "read_decode_file",
    "restore_model", "sequence_metrics", "strip_ids",
]


class DevBleu:
  """`DevBleu(hparams)(model, task, num_samples)`: the sacreBLEU (0-100, cased) of
  `num_samples` dev examples decoded by `model` with the decode hparams `hparams` (None:
  `decode_hparams()`), against their targets (`runner.dev_bleu`).

  A Trainer's evaluations call it with the same model each time: the Decoder (and its traced
  search) is made once per model.

      trainer = Trainer(..., eval_bleu_samples=200,
                        dev_bleu=DevBleu(decode_hparams("beam_size=4")))
  """

  def __init__(self, hparams=None):
    self.decode_hparams = hparams
    self._model = None
    self._decoder = None

  def __call__(self, model, task, num_samples):
    if self._model is not model:
      self._decoder = Decoder(model, self.decode_hparams)
      self._model = model
    return dev_bleu(self._decoder, task, num_samples)
