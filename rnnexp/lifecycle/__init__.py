"""What happens around a run: checkpoints, resuming, interrupts, launching, and how a run ends."""
