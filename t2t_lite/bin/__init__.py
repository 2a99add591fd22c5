"""t2t_lite.bin."""
