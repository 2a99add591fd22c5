"""t2t_lite.decoding: cached greedy and beam search, the decoder, and a string SavedModel.

    from t2t_lite import decoding
    hparams = decoding.load_hparams(output_dir, "transformer_tiny")
    model, _ = decoding.restore_model("algorithmic_reverse_binary40", "transformer", hparams,
                                      output_dir, data_dir)
    decoder = decoding.Decoder(model, decoding.decode_hparams("beam_size=4,alpha=0.6"))
    decoder.decode_texts(["1 0 0 1 1"], problem.feature_encoders(data_dir))  # [["1 1 0 0 1"]]

- `search`: `greedy_search` and `beam_search` over any `step_fn(ids, cache, index)` with a
  fixed-shape cache, each one `tf.while_loop` (tf.function, XLA, TPU); `length_penalty`.
- `decoder`: `decode_hparams` (the --decode_hparams defaults), `decode_ids` (a model's whole
  search as a graph function), `Decoder` (batching, text in and out).
- `runner`: what t2t-decoder does: `load_hparams`, `restore_model`, `decode_from_file`,
  `encode_lines`, `decode_interactive`, `decode_dataset` (dev-split metrics),
  `exact_match_rate`.
- `export`: `export_decoder`, a SavedModel mapping raw strings to decoded strings, and
  `InGraphCodec`, a problem's encoder as TensorFlow ops.
"""
from t2t_lite.decoding.decoder import EOS_ID
from t2t_lite.decoding.decoder import Decoder
from t2t_lite.decoding.decoder import check_decodable
from t2t_lite.decoding.decoder import decode_hparams
from t2t_lite.decoding.decoder import decode_ids
from t2t_lite.decoding.decoder import strip_ids
from t2t_lite.decoding.export import ExportNotSupportedError
from t2t_lite.decoding.export import InGraphCodec
from t2t_lite.decoding.export import export_decoder
from t2t_lite.decoding.export import make_serving_fn
from t2t_lite.decoding.runner import build_model
from t2t_lite.decoding.runner import decode_dataset
from t2t_lite.decoding.runner import decode_from_file
from t2t_lite.decoding.runner import decode_interactive
from t2t_lite.decoding.runner import default_decode_to_file
from t2t_lite.decoding.runner import encode_lines
from t2t_lite.decoding.runner import exact_match_rate
from t2t_lite.decoding.runner import format_metrics
from t2t_lite.decoding.runner import latest_checkpoint
from t2t_lite.decoding.runner import load_hparams
from t2t_lite.decoding.runner import read_decode_file
from t2t_lite.decoding.runner import restore_model
from t2t_lite.decoding.runner import sequence_metrics
from t2t_lite.decoding.search import beam_search
from t2t_lite.decoding.search import greedy_search
from t2t_lite.decoding.search import length_penalty

__all__ = [
    "Decoder", "EOS_ID", "ExportNotSupportedError", "InGraphCodec", "beam_search",
    "build_model", "check_decodable", "decode_dataset", "decode_from_file", "decode_hparams",
    "decode_ids", "decode_interactive", "default_decode_to_file", "encode_lines",
    "exact_match_rate", "export_decoder", "format_metrics", "greedy_search",
    "latest_checkpoint", "length_penalty", "load_hparams", "make_serving_fn",
    "read_decode_file", "restore_model", "sequence_metrics", "strip_ids",
]
