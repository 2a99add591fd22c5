"""Built-in problems; importing this package registers them.

    import problems                      # registers every built-in problem
    from t2t_lite import registry
    registry.problem("algorithmic_reverse_binary40")

- `problems.algorithmic`: tensor2tensor's algorithmic problems (tiny_algo,
  algorithmic_{identity,reverse,addition,multiplication}_{binary,decimal}40,
  algorithmic_shift_decimal40, algorithmic_sort_problem).
- `problems.text`: languagemodel_python_stdlib_bytes (needs no download).
- `problems.tfds_problems`: image_mnist, sentiment_imdb, sentiment_imdb_subwords (TFDS data).
- `problems.translate`: text2text_tmpdir (your own parallel text files), translate_ende_wmt32k,
  translate_ende_wmt8k (WMT English -> German through TFDS).
- `problems.world_model`: the world-model problems (t2t_lite.rl).
"""
from problems import algorithmic  # noqa: F401
from problems import text  # noqa: F401
from problems import tfds_problems  # noqa: F401
from problems import translate  # noqa: F401
from problems import world_model  # noqa: F401
