"""Read and write images as float arrays in [0, 1], with one-line errors for bad files.

``read_image`` returns float32 ``[H, W]`` (grey) or ``[H, W, 3]`` (RGB) whatever the file
holds: 8-bit and 16-bit integer images are scaled by their full range (255 / 65535),
alpha is dropped, palette images are expanded. A file that is missing, not an image,
truncated or in a mode we cannot interpret raises :class:`EGMTError` ``"<path>: <cause>"``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from egmt.errors import EGMTError
from egmt.fileio import atomic_path

#: File extensions that dataset folders may hold (lower case, with the dot).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# Modes whose pixels are 8-bit unsigned per channel, and what to convert them to first
# (palette modes P / PA are expanded to RGB / RGBA before this table is used).
_EIGHT_BIT = {
    "1": "L",
    "L": "L",
    "LA": "L",
    "La": "L",
    "RGB": "RGB",
    "RGBA": "RGB",
    "RGBa": "RGB",
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
}
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as float32 in [0, 1]: ``[H, W]`` grey or ``[H, W, 3]`` RGB.

    A grey picture stored as RGB (R == G == B) stays ``[H, W, 3]``; the caller decides
    what to do with it. EXIF orientation is not applied (pixels as stored, so IR and VIS
    stay aligned whatever their metadata says).
    """
    path = Path(path)
    if not path.is_file():
        raise EGMTError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size == 0:
        raise EGMTError(f"{path}: empty file (0 bytes)")
    # A truncated file must fail, not be padded with grey: insist on Pillow's default.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise EGMTError(
            f"{path}: PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set by some other code; "
            "egmt refuses to read images that may be silently padded"
        )
    try:
        with Image.open(path) as im:
            im.load()
            return _to_float(im, path)
    except EGMTError:
        raise
    except UnidentifiedImageError:
        raise EGMTError(f"{path}: not an image file Pillow can read") from None
    except MemoryError:
        raise
    except Exception as e:  # any decoder failure on a bad file (OSError, ValueError, SyntaxError, zlib...)
        cause = str(e) or type(e).__name__
        raise EGMTError(f"{path}: unreadable image ({cause})") from None


def _to_float(im: Image.Image, path: Path) -> np.ndarray:
    """Pillow image (any supported mode) -> float32 [H, W] or [H, W, 3] in [0, 1]."""
    mode = im.mode
    if mode in ("P", "PA"):
        im = im.convert("RGBA" if "transparency" in im.info or mode == "PA" else "RGB")
        mode = im.mode
    if mode in _EIGHT_BIT:
        target = _EIGHT_BIT[mode]
        if mode != target:
            im = im.convert(target)
        return np.asarray(im, dtype=np.float32) / np.float32(255.0)
    if mode in _SIXTEEN_BIT:
        a = np.asarray(im)  # Pillow gives uint16 (native byte order) for every I;16 variant
        return a.astype(np.float32) / np.float32(65535.0)
    if mode == "I":  # 32-bit int: how Pillow (and some writers) hold 16-bit grey
        a = np.asarray(im)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise EGMTError(f"{path}: 32-bit integer image with values outside the 16-bit range (unsupported)")
        return a.astype(np.float32) / np.float32(65535.0)
    if mode == "F":  # float TIFF: accepted only if already in [0, 1]
        a = np.asarray(im, dtype=np.float32)
        if not np.isfinite(a).all() or (a.size and (a.min() < 0.0 or a.max() > 1.0)):
            raise EGMTError(f"{path}: floating-point image with values outside [0, 1] (unsupported)")
        return a.copy()
    raise EGMTError(f"{path}: unsupported image mode {mode!r}")


def to_uint8(image: np.ndarray, label: object = "image") -> np.ndarray:
    """Float in [0, 1] (clipped, rounded) or uint8 -> uint8: the pixels :func:`write_image` stores."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a
    if not np.issubdtype(a.dtype, np.floating) and a.dtype != np.bool_:
        raise EGMTError(f"{label}: cannot write a {a.dtype} image (want float in [0, 1] or uint8)")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise EGMTError(f"{label}: image contains NaN or infinite values")
    return np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write ``[H, W]`` / ``[H, W, 3]`` (float in [0, 1], or uint8) as an 8-bit image.

    The format follows the extension (PNG for ``.png``; any extension Pillow knows).
    Float values are clipped to [0, 1] and rounded. The file appears atomically (temp file
    in the same folder, then ``os.replace``); missing parent folders are created.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise EGMTError(f"{path}: unknown image extension {path.suffix!r}")
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)):
        raise EGMTError(f"{path}: cannot write an image of shape {tuple(a.shape)} (want [H, W] or [H, W, 3])")
    a = to_uint8(a, path)
    try:
        with atomic_path(path) as tmp:
            Image.fromarray(a).save(tmp, format=fmt)
    except OSError as e:
        raise EGMTError(f"{path}: cannot write image ({e})") from None
