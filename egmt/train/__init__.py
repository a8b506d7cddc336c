"""Training: the loop, atomic resumable checkpoints, and torchrun/DDP set-up."""

from egmt.train.checkpoint import latest_checkpoint, resolve_checkpoint

__all__ = ["latest_checkpoint", "resolve_checkpoint"]
