"""egmt.data.io: reading every supported kind of image, clear errors for bad files, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFile

from egmt.data.io import read_image, write_image
from egmt.errors import EGMTError

RNG = np.random.default_rng(0)


def _u8(shape):
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


def test_grey_8bit_png_exact(tmp_path):
    a = _u8((13, 17))
    Image.fromarray(a, mode="L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (13, 17) and out.dtype == np.float32
    np.testing.assert_array_equal(out, a.astype(np.float32) / 255)


def test_rgb_8bit_png_exact(tmp_path):
    a = _u8((9, 11, 3))
    Image.fromarray(a, mode="RGB").save(tmp_path / "c.png")
    out = read_image(tmp_path / "c.png")
    assert out.shape == (9, 11, 3)
    np.testing.assert_array_equal(out, a.astype(np.float32) / 255)


@pytest.mark.parametrize("ext", [".bmp", ".tif", ".png"])
def test_rgb_other_containers(tmp_path, ext):
    a = _u8((8, 10, 3))
    Image.fromarray(a, mode="RGB").save(tmp_path / f"c{ext}")
    np.testing.assert_array_equal(read_image(tmp_path / f"c{ext}"), a.astype(np.float32) / 255)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_grey_scaled_by_65535(tmp_path, ext):
    a = np.array([[0, 1000, 30000], [65535, 257, 12345]], dtype=np.uint16)
    im = Image.fromarray(a)
    assert im.mode == "I;16"
    im.save(tmp_path / f"d{ext}")
    out = read_image(tmp_path / f"d{ext}")
    assert out.shape == (2, 3) and out.dtype == np.float32
    assert out.max() == 1.0 and out.min() == 0.0
    np.testing.assert_allclose(out, a / 65535.0, rtol=0, atol=1e-7)


def test_32bit_int_image_holding_16bit_values(tmp_path):
    a = np.array([[0, 65535], [100, 40000]], dtype=np.int32)
    Image.fromarray(a).save(tmp_path / "i.tif")  # a 32-bit integer TIFF, Pillow mode "I"
    assert Image.open(tmp_path / "i.tif").mode == "I"
    np.testing.assert_allclose(read_image(tmp_path / "i.tif"), a / 65535.0, atol=1e-7)
    Image.fromarray(np.array([[0, 70000]], dtype=np.int32)).save(tmp_path / "big.tif")
    with pytest.raises(EGMTError, match="big.tif.*16-bit range"):
        read_image(tmp_path / "big.tif")


def test_rgba_drops_alpha(tmp_path):
    a = _u8((6, 7, 4))
    a[..., 3] = 0  # fully transparent: the colour must still come through unchanged
    Image.fromarray(a, mode="RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.shape == (6, 7, 3)
    np.testing.assert_array_equal(out, a[..., :3].astype(np.float32) / 255)


def test_la_drops_alpha(tmp_path):
    a = _u8((5, 4, 2))
    Image.fromarray(a, mode="LA").save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    assert out.shape == (5, 4)
    np.testing.assert_array_equal(out, a[..., 0].astype(np.float32) / 255)


def test_palette_expanded_to_rgb(tmp_path):
    rgb = _u8((12, 12, 3))
    pal = Image.fromarray(rgb, mode="RGB").quantize(colors=16)
    assert pal.mode == "P"
    pal.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    assert out.shape == (12, 12, 3)
    expected = np.asarray(pal.convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_array_equal(out, expected)


def test_palette_with_transparency(tmp_path):
    pal = Image.fromarray(_u8((6, 6, 3)), mode="RGB").quantize(colors=8)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pt.png", transparency=0)
    out = read_image(tmp_path / "pt.png")
    assert out.shape == (6, 6, 3) and 0.0 <= out.min() and out.max() <= 1.0


def test_bilevel_mode_1(tmp_path):
    a = RNG.integers(0, 2, size=(8, 8)).astype(bool)
    Image.fromarray(a).save(tmp_path / "b.png")
    out = read_image(tmp_path / "b.png")
    assert out.shape == (8, 8)
    np.testing.assert_array_equal(out, a.astype(np.float32))


def test_grey_jpeg(tmp_path):
    Image.fromarray(_u8((32, 24)), mode="L").save(tmp_path / "g.jpg", quality=90)
    out = read_image(tmp_path / "g.jpg")
    assert out.shape == (32, 24) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_real_colour_jpeg_and_grey_stored_as_rgb(data_dir):
    vi = read_image(data_dir / "roadscene" / "vi" / "FLIR_00006.jpg")
    assert vi.shape == (329, 500, 3) and vi.dtype == np.float32
    assert 0.0 <= vi.min() and vi.max() <= 1.0 and vi.max() > 0.5
    ir = read_image(data_dir / "roadscene" / "ir" / "FLIR_00006.jpg")
    assert ir.shape == (329, 500)
    # TNO stores grey pictures as RGB with R == G == B: read_image keeps them RGB.
    tno = read_image(data_dir / "tno" / "ir" / "01.png")
    assert tno.ndim == 3 and tno.shape[-1] == 3
    assert (tno[..., 0] == tno[..., 1]).all() and (tno[..., 0] == tno[..., 2]).all()


@pytest.mark.parametrize(
    "src", ["roadscene/vi/FLIR_00006.jpg", "roadscene/ir/FLIR_00006.jpg", "tno/ir/01.png", "msrs/vi/00004N.png"]
)
@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_truncated_file_is_an_error_naming_it(data_dir, tmp_path, src, fraction):
    data = (data_dir / src).read_bytes()
    bad = tmp_path / ("cut_" + src.replace("/", "_"))
    bad.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(EGMTError) as e:
        read_image(bad)
    assert str(bad) in str(e.value) and "truncated" in str(e.value)


def test_an_empty_file_is_said_to_be_empty(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(EGMTError, match=r"empty\.png: empty file \(0 bytes\)"):
        read_image(empty)


def test_truncated_even_if_only_the_last_bytes_of_a_jpeg_are_missing(data_dir, tmp_path):
    data = (data_dir / "roadscene/vi/FLIR_00006.jpg").read_bytes()
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(data[:-2])  # only the EOI marker gone
    with pytest.raises(EGMTError, match="cut.jpg"):
        read_image(bad)


def test_not_an_image(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a PNG\n")
    with pytest.raises(EGMTError) as e:
        read_image(bad)
    assert str(bad) in str(e.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(EGMTError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(EGMTError, match="not a file"):
        read_image(tmp_path)


def test_refuses_when_pillow_would_pad_truncated_files(tmp_path, monkeypatch):
    Image.fromarray(_u8((4, 4)), mode="L").save(tmp_path / "ok.png")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(EGMTError, match="LOAD_TRUNCATED_IMAGES"):
        read_image(tmp_path / "ok.png")


def test_float_tiff_outside_unit_range_is_an_error(tmp_path):
    Image.fromarray(np.array([[0.0, 2.5]], dtype=np.float32), mode="F").save(tmp_path / "f.tif")
    with pytest.raises(EGMTError, match="f.tif"):
        read_image(tmp_path / "f.tif")
    Image.fromarray(np.array([[0.0, 0.25]], dtype=np.float32), mode="F").save(tmp_path / "g.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "g.tif"), [[0.0, 0.25]])


# --- write_image -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7, 5), (7, 5, 3)])
def test_write_float_round_trip(tmp_path, shape):
    a = RNG.random(shape).astype(np.float32)
    path = tmp_path / "new" / "deeper" / "out.png"  # parent folders are created
    write_image(path, a)
    back = read_image(path)
    assert back.shape == shape
    np.testing.assert_allclose(back, a, atol=0.5 / 255 + 1e-7)
    assert [p.name for p in path.parent.iterdir()] == ["out.png"]  # no temp file left behind


def test_write_uint8_exact_and_clipping(tmp_path):
    a = _u8((4, 6))
    write_image(tmp_path / "u.png", a)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "u.png")), a)
    write_image(tmp_path / "c.png", np.array([[-0.5, 0.5, 1.5]]))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "c.png")), [[0, 128, 255]])


def test_write_replaces_existing_file(tmp_path):
    path = tmp_path / "x.png"
    write_image(path, np.zeros((3, 3)))
    write_image(path, np.ones((3, 3)))
    assert read_image(path).min() == 1.0


def test_write_other_extension_and_errors(tmp_path):
    write_image(tmp_path / "x.bmp", np.zeros((3, 3, 3)))
    assert Image.open(tmp_path / "x.bmp").format == "BMP"
    with pytest.raises(EGMTError, match="extension"):
        write_image(tmp_path / "x.nothing", np.zeros((3, 3)))
    with pytest.raises(EGMTError, match="shape"):
        write_image(tmp_path / "y.png", np.zeros((3, 3, 4)))
    with pytest.raises(EGMTError, match="NaN"):
        write_image(tmp_path / "z.png", np.full((3, 3), np.nan))
    assert not (tmp_path / "y.png").exists() and not (tmp_path / "z.png").exists()
