"""Measurements that print ratios taken side by side in one process; see run_all.py."""
