"""Small helpers shared by the trainer and the model-based loop."""
from t2t_lite.utils.dirs import setup_directories
from t2t_lite.utils.timing import format_elapsed, make_relative_timing_fn

__all__ = ["format_elapsed", "make_relative_timing_fn", "setup_directories"]
