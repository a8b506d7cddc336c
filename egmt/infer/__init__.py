"""Inference: load a checkpoint, fuse pairs (caption-free or entity-guided), tile large images."""

from egmt.infer.fuser import EGMTFuser, FusionResult

__all__ = ["EGMTFuser", "FusionResult"]
