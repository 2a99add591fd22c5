"""The problem benchmarks/translate.py trains: text2text_tmpdir with a SentencePiece vocabulary
of 8192 pieces, registered the way README's "Translate" section shows a user doing it
(`--t2t_usr_dir=benchmarks/translate_usr.py`)."""
from problems.translate import Text2textTmpdir
from t2t_lite import registry


@registry.register_problem
class Text2textTmpdirSp8k(Text2textTmpdir):
  vocab_type = "sentencepiece"
  approx_vocab_size = 2**13
