"""t2t_lite.data: the Problem base class, text encoders, data generation and batching.

    from t2t_lite.data import Problem, ModeKeys
    problem = registry.problem("algorithmic_reverse_binary40")
    problem.generate_data(data_dir, tmp_dir)
    problem.check_shards(data_dir)            # CorruptDataError naming a bad shard
    ds = problem.dataset(ModeKeys.TRAIN, data_dir, hparams)
    hp = problem.get_hparams(hparams, data_dir)   # vocab sizes, modalities, data_dir

Modules: `problem` (the Problem class), `pipeline` (reading, batching), `integrity` (corrupt
shards), `generator_utils` (writing shards), `text_encoder` (with `subword_vocab`: subword
vocabulary files, tensor2tensor's included; `sentencepiece_encoder`), `text_problems`,
`translate`, `tfds_problem`.

Base classes to subclass: `Problem` (any data), `Text2TextProblem` / `Text2SelfProblem`
(strings; `t2t_lite.data.text_problems`), `TranslateProblem` (parallel text files or a TFDS
translation dataset; `t2t_lite.data.translate`), `TfdsProblem` (a TFDS dataset read as it is;
`t2t_lite.data.tfds_problem`).
"""
from t2t_lite.constants import ModeKeys
from t2t_lite.data import generator_utils
from t2t_lite.data import text_encoder
from t2t_lite.data.pipeline import batching_scheme
from t2t_lite.data.pipeline import bucket_boundaries
from t2t_lite.data.pipeline import example_length
from t2t_lite.data.problem import Problem
from t2t_lite.data.text_problems import Text2SelfProblem
from t2t_lite.data.text_problems import Text2TextProblem
from t2t_lite.data.text_problems import VocabType
from t2t_lite.data.tfds_problem import TfdsProblem
from t2t_lite.data.translate import TranslateProblem

__all__ = [
    "ModeKeys",
    "Problem",
    "Text2SelfProblem",
    "Text2TextProblem",
    "TfdsProblem",
    "TranslateProblem",
    "VocabType",
    "batching_scheme",
    "bucket_boundaries",
    "example_length",
    "generator_utils",
    "text_encoder",
]
