#!/usr/bin/env python3
"""t2t-bleu, runnable from a clone: `python scripts/t2t_bleu.py --help`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from t2t_lite.bin.t2t_bleu import console_main  # noqa: E402

if __name__ == "__main__":
  console_main()
