"""t2t_lite.models."""
