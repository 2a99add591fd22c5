"""t2t_lite.layers."""
