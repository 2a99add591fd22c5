#!/usr/bin/env python
r"""The model-based RL loop (collect, train a world model, evaluate); see
t2t_lite/bin/trainer_model_based.py for the flags.

    python scripts/trainer_model_based.py --output_dir=/tmp/rlmb --loop_hparams_set=rlmb_tiny
"""
import os
import sys

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from t2t_lite.bin import trainer_model_based  # noqa: E402

if __name__ == "__main__":
  trainer_model_based.console_main()
