"""Training: losses, per-stage tasks and the resumable, distributed training loop."""
