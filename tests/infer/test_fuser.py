import numpy as np
import pytest
import torch
from PIL import Image

from egmt.cli import main as cli_main
from egmt.data.io import read_image
from egmt.errors import EGMTError
from egmt.infer.fuser import EGMTFuser
from egmt.infer.tiling import fuse_in_tiles


VALIDATED = {"step": 10, "rule": "test", "fusion": {}, "classification": {"map": 0.6, "prior_map": 0.5}}


@pytest.fixture(scope="module")
def fuser(checkpoint):
    return EGMTFuser.from_pretrained(checkpoint, device="cpu")


def test_caption_free_inference_picks_classes_and_fuses(checkpoint, data_dir):
    # a checkpoint whose validation says the caption-free classifier beats the label prior
    fuser = EGMTFuser.from_pretrained(checkpoint, device="cpu", validation=VALIDATED)
    ir, vi = data_dir / "tno" / "ir" / "07.png", data_dir / "tno" / "vi" / "07.png"
    everything = fuser(ir, vi, threshold=0.0)  # every class is above 0
    assert everything.entity_source == "classifier"
    assert everything.entities == ["person", "tree", "house", "road"]
    assert set(everything.probabilities) == set(everything.entities)
    assert everything.image.shape == (256, 256)  # TNO's grey-as-RGB visible stays grey
    assert 0.0 <= everything.image.min() and everything.image.max() <= 1.0
    nothing = fuser(ir, vi, threshold=1.0)
    assert nothing.entities == [] and nothing.entity_source == "classifier"
    # The entities do guide the second pass.
    assert not np.allclose(everything.image, nothing.image)


def test_given_entities_and_colour_restored(fuser, data_dir):
    ir, vi = data_dir / "roadscene" / "ir" / "FLIR_00006.jpg", data_dir / "roadscene" / "vi" / "FLIR_00006.jpg"
    out = fuser(ir, vi, entities=["car", "road"])
    assert out.entity_source == "given" and out.entities == ["car", "road"]
    src = read_image(vi)
    assert out.image.shape == src.shape  # colour in, colour out

    # chroma comes from the visible image: Cb of the output ~ Cb of the source
    def cb(rgb):
        return -0.168736 * rgb[..., 0] - 0.331264 * rgb[..., 1] + 0.5 * rgb[..., 2]

    inside = (out.image > 0.02).all(-1) & (out.image < 0.98).all(-1)  # away from clipping
    assert np.abs(cb(out.image) - cb(src))[inside].max() < 2e-3


def test_unknown_entity_without_its_encoder_is_a_clear_error(fuser, data_dir):
    ir, vi = data_dir / "tno" / "ir" / "07.png", data_dir / "tno" / "vi" / "07.png"
    with pytest.raises(EGMTError, match="'spaceship' is not in the checkpoint's entity bank") as e:
        fuser(ir, vi, entities=["spaceship"])
    assert "\n" not in str(e.value)


def test_tiles_match_a_single_pass(fuser, data_dir):
    """Tiles aligned to the window grid with a 32-pixel blended overlap: within 5e-3 of one pass
    (the seams differ only where convolution receptive fields cross a tile border)."""
    img = torch.from_numpy(read_image(data_dir / "tno" / "ir" / "10.png")[:160, :224, 0])[None, None]
    vi = torch.from_numpy(read_image(data_dir / "tno" / "vi" / "10.png")[:160, :224, 0])[None, None]
    with torch.no_grad():
        shapes = []

        def run(a, b):
            shapes.append(tuple(a.shape[-2:]))
            return fuser.model(a, b, classify=False).fused

        whole = run(img, vi)
        shapes.clear()
        tiled = fuse_in_tiles(run, img, vi, tile=96, overlap=32)
    assert len(shapes) == 2 * 3 and set(shapes) == {(96, 96)}  # really tiled: 2 rows x 3 columns
    diff = (whole - tiled).abs()
    assert diff.max() < 5e-3, diff.max()  # measured 4e-4 (8-bit quantisation step: 3.9e-3)
    assert diff.mean() < 1e-4


def test_fuse_folder_skips_a_corrupt_file_and_fuses_the_rest(checkpoint, data_dir, tmp_path, capsys):
    src = data_dir / "tno"
    for sub in ("ir", "vi"):
        (tmp_path / sub).mkdir()
        for name in ("07", "19", "20"):
            Image.open(src / sub / f"{name}.png").convert("L").save(tmp_path / sub / f"{name}.png")
    good = (tmp_path / "vi" / "19.png").read_bytes()
    (tmp_path / "vi" / "19.png").write_bytes(good[: len(good) // 2])  # truncated
    out = tmp_path / "out"
    code = cli_main(
        [
            "fuse",
            "--ir",
            str(tmp_path / "ir"),
            "--vi",
            str(tmp_path / "vi"),
            "-o",
            str(out),
            "--checkpoint",
            str(checkpoint),
            "--entities",
            "person, tree",
            "--device",
            "cpu",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 1
    assert sorted(p.name for p in out.glob("*.png")) == ["07.png", "20.png"]
    assert "19" in printed and "truncated" in printed
    table = (out / "entities.csv").read_text()
    assert "person; tree" in table and "typed" in table


def test_fuse_a_pair_with_a_baseline(data_dir, tmp_path):
    ir, vi = data_dir / "tno" / "ir" / "07.png", data_dir / "tno" / "vi" / "07.png"
    out = tmp_path / "avg.png"
    assert cli_main(["fuse", "--ir", str(ir), "--vi", str(vi), "-o", str(out), "--method", "average"]) == 0
    a = np.asarray(Image.open(ir).convert("L"), dtype=float)
    b = np.asarray(Image.open(vi).convert("L"), dtype=float)
    assert np.abs(np.asarray(Image.open(out), dtype=float) - (a + b) / 2).max() <= 1.0


def test_wrong_checkpoint_is_a_one_line_error(tmp_path, data_dir, capsys):
    ir, vi = data_dir / "tno" / "ir" / "07.png", data_dir / "tno" / "vi" / "07.png"
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"not a safetensors file")
    code = cli_main(
        ["fuse", "--ir", str(ir), "--vi", str(vi), "-o", str(tmp_path / "x.png"), "--checkpoint", str(tmp_path / "ckpt")]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("egmt: error:") and err.count("\n") == 1


def test_fuse_guidance_scales_the_entities_effect(checkpoint, data_dir, tmp_path, capsys):
    """``egmt fuse --guidance G`` overrides the checkpoint's model.entity_guidance: the typed
    entities move the output further from the caption-free pass; 0 is the network as trained; a
    negative factor or an exported graph is a one-line error."""
    ir, vi = str(data_dir / "tno" / "ir" / "07.png"), str(data_dir / "tno" / "vi" / "07.png")

    def fuse(name: str, *extra: str) -> np.ndarray:
        out = tmp_path / f"{name}.png"
        args = ["fuse", "--ir", ir, "--vi", vi, "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu"]
        assert cli_main(args + list(extra)) == 0
        return np.asarray(Image.open(out).convert("L"), dtype=float)

    free = fuse("free", "--entities", " , ")  # no entity typed: E = 0
    as_trained = fuse("plain", "--entities", "person, tree", "--guidance", "0")
    guided = fuse("guided", "--entities", "person, tree", "--guidance", "4")
    assert np.abs(guided - free).mean() > 2 * np.abs(as_trained - free).mean() > 0
    base = ["fuse", "--ir", ir, "--vi", vi, "-o", str(tmp_path / "x.png"), "--checkpoint", str(checkpoint)]
    assert cli_main(base + ["--guidance", "-1"]) == 2 and "--guidance -1.0: expected 0 or more" in capsys.readouterr().err
    assert cli_main(base + ["--guidance", "1", "--backend", "onnxruntime"]) == 2
    assert "--guidance needs --backend torch" in capsys.readouterr().err
    assert cli_main(base + ["--guidance", "1", "--method", "average"]) == 2
    assert "--guidance steers EGMT's entities: --method average has none" in capsys.readouterr().err
