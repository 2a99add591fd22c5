"""Problems read from TensorFlow Datasets (see `t2t_lite.data.tfds_problem.TfdsProblem`).

- `image_mnist`: tfds `mnist`; inputs float32 [28, 28, 1] in [0, 1], targets the digit
  (10 classes); train = TFDS train, dev = TFDS test.
- `sentiment_imdb`: tfds `imdb_reviews`; inputs the review's UTF-8 bytes (+2, EOS appended,
  cut to max_length), targets 0 (neg) / 1 (pos); train = TFDS train, dev = TFDS test.
- `sentiment_imdb_subwords`: the same with an 8k subword vocabulary that t2t-datagen builds
  from the training reviews (`vocab.sentiment_imdb_subwords.8192.subwords` in data_dir).

TFDS prepares the data (it needs internet); on a machine without it, prepare it elsewhere:

    tfds build mnist --data_dir=/path/tfds      # then copy /path/tfds/mnist here
    t2t-trainer --problem=image_mnist --data_dir=/path/tfds ...   # or TFDS_DATA_DIR=/path/tfds
"""
from t2t_lite import registry
from t2t_lite.data.tfds_problem import TfdsProblem


@registry.register_problem
class ImageMnist(TfdsProblem):
  """MNIST digits: 28x28x1 images, 10 classes."""

  tfds_name = "mnist"
  split_map = {"train": "train", "dev": "test"}
  feature_map = {"inputs": "image", "targets": "label"}
  inputs_kind = "image"
  targets_kind = "class_label"
  num_classes = 10

  @property
  def image_shape(self):
    return (28, 28, 1)


@registry.register_problem
class SentimentImdb(TfdsProblem):
  """IMDB movie reviews, positive or negative; byte-level inputs."""

  tfds_name = "imdb_reviews"
  split_map = {"train": "train", "dev": "test"}
  feature_map = {"inputs": "text", "targets": "label"}
  inputs_kind = "text"
  targets_kind = "class_label"
  vocab_type = "character"
  num_classes = 2

  def class_labels(self, data_dir=None):
    return ["neg", "pos"]


@registry.register_problem
class SentimentImdbSubwords(SentimentImdb):
  """IMDB sentiment with an 8k subword vocabulary built by t2t-datagen."""

  vocab_type = "subwords"
  approx_vocab_size = 2**13
