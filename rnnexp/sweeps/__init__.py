"""Sweeps: the Optuna sweeper's helpers (pruning, trial plumbing), reading a sweep back, and its review report."""
