"""Text problems that need no download.

`languagemodel_python_stdlib_bytes`: a byte-level language model over Python source code,
the source files of a fixed list of standard-library modules of the Python that runs
t2t-datagen (about 2 MB for Python 3.11; a module missing from another version is skipped and
logged). The files are read in the listed order; the dev split is `DEV_MODULES` (about 6% of
the bytes), the train split the rest. Each split's files are joined (separated by a newline)
into one byte stream cut into consecutive chunks of `sequence_length - 1` bytes (the last,
partial chunk is dropped), each written with EOS appended: every example is exactly
`sequence_length` (256) ids long, so nothing is dropped with max_length >= 256. The data is
the same on every run with the same Python version.

    t2t-datagen --problem=languagemodel_python_stdlib_bytes --data_dir=~/t2t_data
    t2t-trainer --problem=languagemodel_python_stdlib_bytes --model=transformer \\
        --hparams_set=transformer_small --data_dir=~/t2t_data --output_dir=~/t2t_train/lm
"""
import os
import sysconfig

from absl import logging

from t2t_lite import registry
from t2t_lite.data import text_encoder
from t2t_lite.data.text_problems import Text2SelfProblem, VocabType

TRAIN_MODULES = (
    "argparse", "ast", "base64", "calendar", "collections", "configparser", "contextlib",
    "copy", "csv", "dataclasses", "datetime", "difflib", "dis", "enum", "fractions",
    "functools", "gettext", "inspect", "json/decoder", "json/encoder", "logging", "ntpath",
    "optparse", "pathlib", "pickle", "posixpath", "pprint", "random", "shutil", "statistics",
    "subprocess", "tarfile", "threading", "tokenize", "typing", "uuid", "zipfile",
)
DEV_MODULES = ("bisect", "heapq", "string", "textwrap")


def stdlib_source_files(modules):
  """The existing source files of `modules` (`name.py` or `name/__init__.py`), in order."""
  root = sysconfig.get_paths()["stdlib"]
  files = []
  for module in modules:
    for candidate in (module + ".py", os.path.join(module, "__init__.py")):
      path = os.path.join(root, candidate)
      if os.path.isfile(path):
        files.append(path)
        break
    else:
      logging.warning("standard-library module %s has no source file under %s; skipped",
                      module, root)
  return files


@registry.register_problem
class LanguagemodelPythonStdlibBytes(Text2SelfProblem):
  """Byte-level language model over a fixed set of Python standard-library sources."""

  vocab_type = VocabType.CHARACTER
  sequence_length = 256
  num_train_shards = 4
  num_dev_shards = 1

  def source_files(self, split):
    return stdlib_source_files(TRAIN_MODULES if split == "train" else DEV_MODULES)

  def generate_samples(self, data_dir, tmp_dir, split):
    del data_dir, tmp_dir
    chunk = self.sequence_length - 1
    parts = []
    for path in self.source_files(split):
      with open(path, "rb") as f:
        parts.append(f.read())
    stream = b"\n".join(parts) + b"\n"
    for start in range(0, len(stream) - chunk + 1, chunk):
      yield {"targets": stream[start:start + chunk]}

  def max_length(self, model_hparams):
    return max(super().max_length(model_hparams), self.sequence_length)

  def packed_length(self, model_hparams):
    del model_hparams
    return 0  # every example fills a row of sequence_length: nothing to pack

  def feature_encoders(self, data_dir):
    del data_dir
    return {"targets": text_encoder.ByteTextEncoder()}
