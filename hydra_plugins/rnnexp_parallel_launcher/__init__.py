"""rnnexp's Hydra launcher: a grid's jobs side by side, each its own process forked from a warm forkserver."""
