"""t2t_lite.rl."""
