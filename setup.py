"""Packaging for t2t_lite: `pip install .` or `pip install -e ".[test]"`."""
import os
import re

from setuptools import find_packages, setup

_HERE = os.path.dirname(os.path.abspath(__file__))


def _version():
  # One version string: t2t_lite/__init__.py; read as text so setup.py imports nothing.
  with open(os.path.join(_HERE, "t2t_lite", "__init__.py"), encoding="utf-8") as f:
    return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


setup(
    name="t2t-lite",
    version=_version(),
    description="tensor2tensor's train-from-the-command-line workflow for TensorFlow 2 and Keras 3",
    long_description=open(os.path.join(_HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["t2t_lite", "t2t_lite.*", "problems", "problems.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "tensorflow-datasets>=4.9",
        "absl-py>=1.0",
        # tf.summary writes through TensorBoard, which TensorFlow no longer installs itself.
        "tensorboard>=2.16",
        # t2t-bleu: sacreBLEU, the standard corpus BLEU of detokenized text.
        "sacrebleu>=2.0",
        # SentencePiece vocabularies (vocab_type="sentencepiece"), as Model Garden and T5 use.
        "sentencepiece>=0.2.0",
        # t2t-serve: the HTTP server (graceful shutdown on the runner since 3.9) and /metrics.
        "aiohttp>=3.9",
        "prometheus_client>=0.16",
    ],
    extras_require={
        # tensorflow-text (the SentencePiece op of a strings SavedModel) is not a dependency:
        # each release is built for one TensorFlow version, so users install the one of theirs
        # (README). The tests install it with the TensorFlow they get (no wheels for Windows).
        "test": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6",
                 "tensorflow-text>=2.16; platform_system != 'Windows'"],
        # The peer the benchmarks compare against (benchmarks/peer.py, benchmarks/translate.py);
        # never needed to train, decode or test.
        "bench": ["keras-hub>=0.20"],
    },
    entry_points={
        "console_scripts": [
            "t2t-trainer=t2t_lite.bin.t2t_trainer:console_main",
            "t2t-datagen=t2t_lite.bin.t2t_datagen:console_main",
            "t2t-decoder=t2t_lite.bin.t2t_decoder:console_main",
            "t2t-trainer-model-based=t2t_lite.bin.trainer_model_based:console_main",
            "t2t-bleu=t2t_lite.bin.t2t_bleu:console_main",
            "t2t-avg-all=t2t_lite.bin.t2t_avg_all:console_main",
            "t2t-serve=t2t_lite.bin.t2t_serve:console_main",
        ],
    },
    license="Apache-2.0",
)
