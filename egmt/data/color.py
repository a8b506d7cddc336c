"""Luma / chroma split for fusing colour images on Y (YCbCr, BT.601 full range, via kornia).

Fusion networks work on one channel: the visible image's Y is fused with the infrared,
and the visible Cb/Cr are put back afterwards. The coefficients are kornia's
(``Y = 0.299 R + 0.587 G + 0.114 B``, Cb/Cr centred on 0.5), the usual JPEG/BT.601
full-range convention of fusion code (e.g. OpenCV's ``COLOR_RGB2YCrCb``).
"""

from __future__ import annotations

import torch
from kornia.color import rgb_to_ycbcr, ycbcr_to_rgb
from torch import Tensor


def split_luma(image: Tensor) -> tuple[Tensor, Tensor | None]:
    """``[..., 3|1, H, W]`` in [0, 1] -> (Y ``[..., 1, H, W]``, CbCr ``[..., 2, H, W]`` or None if grey)."""
    if image.dim() < 3 or image.shape[-3] not in (1, 3):
        raise ValueError(f"split_luma: want [..., 1|3, H, W], got {tuple(image.shape)}")
    if image.shape[-3] == 1:
        return image, None
    ycbcr = rgb_to_ycbcr(image)
    return ycbcr[..., :1, :, :], ycbcr[..., 1:, :, :]


def merge_luma(y: Tensor, cbcr: Tensor | None) -> Tensor:
    """(Y ``[..., 1, H, W]``, CbCr ``[..., 2, H, W]`` or None) -> RGB ``[..., 3, H, W]`` clamped to [0, 1], or Y."""
    if y.dim() < 3 or y.shape[-3] != 1:
        raise ValueError(f"merge_luma: want Y of shape [..., 1, H, W], got {tuple(y.shape)}")
    if cbcr is None:
        return y
    if cbcr.shape[-3] != 2 or cbcr.shape[-2:] != y.shape[-2:]:
        raise ValueError(f"merge_luma: CbCr {tuple(cbcr.shape)} does not match Y {tuple(y.shape)}")
    return ycbcr_to_rgb(torch.cat([y, cbcr.to(y.dtype)], dim=-3)).clamp(0.0, 1.0)
