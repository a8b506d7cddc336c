"""The ``--device`` / ``train.device`` names, checked before any work: ``auto``, ``cpu``, ``cuda``,
``cuda:N`` (and the other device types torch knows). A name torch cannot parse, or a CUDA device
this torch build or machine does not have, is an :class:`~egmt.errors.EGMTError` in one line
instead of torch's traceback at the first tensor moved there."""

from __future__ import annotations

import torch

from egmt.errors import EGMTError


def resolve_device(name: str | torch.device, local_rank: int = 0) -> torch.device:
    """``"auto"``: this rank's CUDA device if there is one, else the CPU; any other name as torch
    reads it, checked to exist. EGMTError for an unknown name or a missing CUDA device."""
    if isinstance(name, torch.device):
        device = name
    elif name == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    else:
        try:
            device = torch.device(name)
        except (RuntimeError, ValueError):
            raise EGMTError(f"device {name!r}: not a device name (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise EGMTError(f"device {str(name)!r}: this machine or torch build has no CUDA device (use cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise EGMTError(f"device {str(name)!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device
