"""rnnexp's Optuna sweeper for Hydra: pruning, trials side by side, studies in shared storage."""
