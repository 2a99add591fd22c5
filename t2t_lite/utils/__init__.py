"""t2t_lite.utils."""
