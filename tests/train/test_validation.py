"""Validation during training, the best checkpoint, entity dropout and several data sources."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from egmt.config import DataSource, EGMTConfig
from egmt.data.crops import PairCropDataset
from egmt.data.pairs import find_pairs
from egmt.errors import EGMTError
from egmt.text.features import EntityFeatures
from egmt.floors import Floors
from egmt.train.trainer import Trainer, train


def _with_validation(cfg: EGMTConfig, root: Path) -> EGMTConfig:
    cfg.data.val_sources = [DataSource(str(root), "train.txt", cfg.data.annotations)]
    cfg.train.val_crop = 48
    cfg.train.val_metrics = ["MI", "Qabf", "SSIM"]
    cfg.train.val_fidelity_metrics = ["PSNR"]
    cfg.train.val_max_seam = 10.0  # an untrained network on 48-pixel crops: its seams are no subject here
    return cfg


def test_validation_is_logged_written_with_checkpoints_and_best_is_kept(tiny_dataset, tiny_config, tmp_path):
    run = tmp_path / "run"
    cfg = _with_validation(tiny_config(tiny_dataset, max_steps=4, save_every=100, val_every=2), tiny_dataset)
    final = train(cfg, run)
    with (run / "validation.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4]  # every val_every steps, and the last
    assert final.name == "step-0000004"
    result = json.loads((final / "validation.json").read_text())
    assert result["step"] == 4 and result["pairs"] == 3
    assert set(result["fusion"]) == {"MI", "Qabf", "SSIM", "PSNR"}
    ratios = [result["fusion"][m] / result["baseline_average"][m] for m in ("MI", "Qabf", "SSIM", "PSNR")]
    # the geometric mean of the information group's mean ratio and the fidelity group's
    assert result["score"] == pytest.approx(math.sqrt(sum(ratios[:3]) / 3 * ratios[3]))
    assert result["information"] == pytest.approx(sum(ratios[:3]) / 3) and result["fidelity"] == pytest.approx(ratios[3])
    # the seam ratio of the one source, its worst pair, and the floor it is held to
    assert result["max_seam"] == 10.0 and result["max_source_seam"] == pytest.approx(result["source_seam"][0])
    assert float(rows[-1]["max_source_seam"]) == pytest.approx(result["max_source_seam"])
    assert result["worst_seam"]["seam"] >= result["max_source_seam"]
    # thermal-target retention: logged beside the score, not in it (NaN where the tiny pairs'
    # hottest IR pixels are no warmer than the visible image, which does not bar a validation)
    retention = result["target_retention"]
    assert isinstance(retention, float) and (math.isnan(retention) or -1.0 < retention < 2.0)
    assert float(rows[-1]["target_retention"]) == pytest.approx(retention, nan_ok=True)
    assert result["source_retention"] == [pytest.approx(retention, nan_ok=True)]  # one source
    assert result["min_retention"] == 0.5 and rows[-1]["eligible"] == str(int(result["eligible"]))
    assert 0.0 <= result["classification"]["map"] <= 1.0 and 0.0 < result["classification"]["prior_map"] <= 1.0
    best = json.loads((run / "best" / "validation.json").read_text())
    assert best["score"] == max(float(r["score"]) for r in rows)
    assert (run / "best" / "model.safetensors").is_file() and not (run / "best" / "training_state.pt").exists()
    # a contact sheet per validation (IR | VIS | fused of the three 48-pixel crops), one beside each checkpoint
    from egmt.data.io import read_image

    sheets = sorted((run / "validation").glob("step-*.png"))
    assert [p.name for p in sheets] == ["step-000002.png", "step-000004.png"]
    assert read_image(sheets[-1]).shape[:2] == (3 * 48, 3 * 48)
    assert (final / "validation.png").read_bytes() == sheets[-1].read_bytes()
    assert (run / "best" / "validation.png").is_file()


def _fixed_fusion(cfg: EGMTConfig, fuse, num_classes: int = 3) -> torch.nn.Module:
    """A stand-in for the network, with the encode/decode interface validation calls: its fused
    image is ``fuse(ir, vi)`` and its classifier scores every class 0."""
    from egmt.model.network import EGMTOutput

    class Fixed(torch.nn.Module):
        config = cfg.model

        def encode(self, ir, vi):
            return ir, vi

        def decode(self, encoded, entities=None, entity_mask=None, classify=True, fuse=True):
            ir, vi = encoded
            return EGMTOutput(fused=fuse_images(ir, vi) if fuse else None, logits=torch.zeros(ir.shape[0], num_classes))

    fuse_images = fuse
    return Fixed()


def test_average_fusion_scores_exactly_one(tiny_dataset, tiny_config):
    """A model that outputs the average of its sources must score 1.0 by the rule's definition."""
    from egmt.train.validation import Validator

    cfg = _with_validation(tiny_config(tiny_dataset), tiny_dataset)
    validator = Validator(cfg, EntityFeatures.from_annotation_file(cfg.data.annotations))

    average = _fixed_fusion(cfg, lambda ir, vi: (ir + vi) / 2)
    assert validator(average, torch.device("cpu"))["score"] == pytest.approx(1.0, abs=1e-12)


def _warm_target_pairs(root: Path) -> Path:
    """Two 64x64 pairs whose IR has a warm square over a flat visible image."""
    from PIL import Image

    for sub in ("ir", "vi"):
        (root / sub).mkdir(parents=True)
    for name, level in (("a", 200), ("b", 160)):
        ir = torch.full((64, 64), 40, dtype=torch.uint8)
        ir[20:30, 20:30] = level
        Image.fromarray(ir.numpy()).save(root / "ir" / f"{name}.png")
        Image.fromarray(torch.full((64, 64), 90, dtype=torch.uint8).numpy()).save(root / "vi" / f"{name}.png")
    return root


@pytest.mark.parametrize("output, kept, eligible", [("max", 1.0, True), ("average", 0.5, True), ("visible", 0.0, False)])
def test_validation_is_eligible_only_when_every_source_keeps_the_warm_targets(tmp_path, output, kept, eligible):
    from egmt.train.validation import Validator

    warm = _warm_target_pairs(tmp_path / "warm")
    cfg = EGMTConfig()
    cfg.data.val_sources = [DataSource(str(warm)), DataSource(str(warm))]
    cfg.train.val_crop = 0
    cfg.train.val_metrics = ["SSIM"]
    validator = Validator(cfg, None)

    fixed = _fixed_fusion(
        cfg, {"max": torch.maximum, "average": lambda ir, vi: (ir + vi) / 2, "visible": lambda ir, vi: vi}[output]
    )
    result = validator(fixed, torch.device("cpu"))
    assert result["source_retention"] == [pytest.approx(kept, abs=0.01)] * 2
    assert result["min_source_retention"] == pytest.approx(kept, abs=0.01)
    assert result["eligible"] is eligible
    validator.floors = Floors()  # no floor: every validation may be the best
    assert validator(fixed, torch.device("cpu"))["eligible"] is True
    floors = Floors(min_retention=0.5, max_seam=1.03)
    assert floors.met_by({"min_source_retention": math.nan}) and not floors.met_by({"min_source_retention": 0.49})
    # the seam floor (val_max_seam = 1.03), beside it: the worst source above it bars the validation
    assert floors.met_by({"min_source_retention": 0.7, "max_source_seam": 1.0})
    assert not floors.met_by({"min_source_retention": 0.7, "max_source_seam": 1.2})
    assert Floors(min_retention=0.5).met_by({"min_source_retention": 0.7, "max_source_seam": 1.2})
    validator.floors = floors
    refs = validator.reference_scores()  # the same rule for fusions without a network
    assert refs["average"]["score"] == pytest.approx(1.0) and refs["average"]["eligible"]
    assert not refs["copy visible"]["eligible"] and refs["max(IR, VI)"]["source_retention"] == [pytest.approx(1.0)] * 2


def test_the_losss_contrast_target_is_a_reference(tmp_path):
    """With a contrast intensity target, the references include that target as a fusion (what a
    network fitting eq. 12's term exactly gives), named by its parameters; not with max(IR, VI)."""
    from egmt.config import LossConfig
    from egmt.model.prior import contrast_target
    from egmt.train.validation import REFERENCE_FUSIONS, Validator

    warm = _warm_target_pairs(tmp_path / "warm")
    cfg = EGMTConfig()
    cfg.data.val_sources = [DataSource(str(warm))]
    cfg.train.val_crop = 0
    cfg.train.val_metrics = ["MI", "SSIM"]
    validator = Validator(cfg, None)
    assert cfg.loss.intensity_target == "max"
    assert set(validator.reference_scores()) == set(REFERENCE_FUSIONS)
    # every parameter off its default, so a target built without one of them scores otherwise
    loss = LossConfig(
        intensity_target="contrast", intensity_sigma=4.0, intensity_power=2.0, intensity_noise=20.0, intensity_rebase=16.0
    )
    plain = LossConfig(intensity_target="contrast", intensity_noise=20.0, intensity_rebase=16.0)  # sigma 8, power 4
    guided = LossConfig(
        intensity_target="contrast", intensity_noise=20.0, intensity_rebase=16.0, intensity_rebase_spread="guided"
    )
    refs = validator.reference_scores([loss, loss, plain, guided])  # one row per distinct target
    name, plain_name = "contrast target (sigma 4, power 2, kappa 20, re-based 16)", "contrast target (kappa 20, re-based 16)"
    guided_name = "contrast target (kappa 20, re-based 16, guided)"
    assert set(refs) == set(REFERENCE_FUSIONS) | {name, plain_name, guided_name}
    assert refs[guided_name]["score"] != pytest.approx(refs[plain_name]["score"])
    assert refs[name]["score"] != pytest.approx(refs[plain_name]["score"])
    fused = [contrast_target(p.ir[None], p.vi[None], 4.0, 2.0, 20.0, 16.0)[0] for p in validator.pairs]
    defaults = [contrast_target(p.ir[None], p.vi[None], noise=20.0, rebase=16.0)[0] for p in validator.pairs]
    assert validator.summarize(defaults)["score"] != pytest.approx(validator.summarize(fused)["score"])  # sigma, power count
    assert refs[name]["score"] == pytest.approx(validator.summarize(fused)["score"])
    assert refs[name]["score"] != pytest.approx(refs["max(IR, VI)"]["score"])  # the target is not max


def test_an_ineligible_validation_never_becomes_the_best(tiny_dataset, tiny_config, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(tiny_dataset), run)
    try:
        trainer.save({"score": 2.0, "eligible": False})
        assert not (run / "best").exists()
        trainer.step = 1
        trainer.save({"score": 1.0, "eligible": True})
        assert json.loads((run / "best" / "validation.json").read_text())["score"] == 1.0
        trainer.step = 2
        trainer.save({"score": 3.0, "eligible": False})
        assert json.loads((run / "best" / "validation.json").read_text())["score"] == 1.0 and trainer.best_score == 1.0
    finally:
        trainer.close()


def test_entity_dropout_hides_entities_and_keeps_labels(tiny_dataset, tiny_config, tmp_path):
    cfg = tiny_config(tiny_dataset, entity_drop_all=1.0)
    trainer = Trainer(cfg, tmp_path / "run")
    batch = {"ir": torch.zeros(2, 1, 32, 32), "vi": torch.zeros(2, 1, 32, 32), "name": ["01", "02"]}
    inputs = trainer._batch(batch)
    assert not inputs["entity_mask"].any()  # every entity dropped
    assert inputs["labels"].sum() == 5  # the labels stay: 3 + 2 positives

    cfg = tiny_config(tiny_dataset, entity_drop=0.5)
    trainer = Trainer(cfg, tmp_path / "run2")
    mask = torch.ones(2000, 8, dtype=torch.bool)
    kept = trainer._drop_entities(mask).float().mean().item()
    assert 0.45 < kept < 0.55
    assert torch.equal(Trainer(tiny_config(tiny_dataset), tmp_path / "run3")._drop_entities(mask), mask)  # off by default


def test_extra_sources_add_pairs_and_names_must_be_unique(tiny_dataset, tiny_config, tmp_path):
    other = tmp_path / "other"
    for sub in ("ir", "vi"):
        (other / sub).mkdir(parents=True)
        shutil.copy(tiny_dataset / sub / "01.png", other / sub / "99.png")
    cfg = tiny_config(tiny_dataset)
    n = len(PairCropDataset.from_config(cfg.data).names)
    cfg.data.extra_sources = [DataSource(str(other))]
    assert len(PairCropDataset.from_config(cfg.data).names) == n + 1

    clash = tmp_path / "clash"
    shutil.copytree(tiny_dataset / "ir", clash / "ir")
    shutil.copytree(tiny_dataset / "vi", clash / "vi")
    cfg.data.extra_sources = [DataSource(str(clash))]
    with pytest.raises(EGMTError, match="unique across sources"):
        PairCropDataset.from_config(cfg.data)


def test_annotation_files_merge_only_from_one_folder(tiny_dataset, tmp_path):
    ann = tiny_dataset / "annotations"
    one = tmp_path / "one.jsonl"
    lines = (ann / "tiny.jsonl").read_text().splitlines()
    (ann / "part.jsonl").write_text(lines[0] + "\n")
    try:
        with pytest.raises(EGMTError, match="also annotated"):
            EntityFeatures.from_annotation_files([ann / "tiny.jsonl", ann / "part.jsonl"])
    finally:
        (ann / "part.jsonl").unlink()
    one.write_text(lines[0] + "\n")
    with pytest.raises(EGMTError, match="share a folder"):
        EntityFeatures.from_annotation_files([ann / "tiny.jsonl", one])


def test_split_file_may_live_outside_the_dataset(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mine.txt").write_text("# a split kept in the repository\n02\n")
    assert [p.name for p in find_pairs(tiny_dataset, "mine.txt")] == ["02"]
    assert len(find_pairs(tiny_dataset, "train.txt")) == 3  # relative to the dataset first
    with pytest.raises(EGMTError, match="split file not found"):
        find_pairs(tiny_dataset, "absent.txt")


def test_config_with_sources_round_trips(tmp_path):
    cfg = EGMTConfig()
    cfg.data.val_sources = [DataSource("a", "v.txt", "a.jsonl")]
    cfg.save(tmp_path / "c.json")
    assert EGMTConfig.load(tmp_path / "c.json") == cfg
    (tmp_path / "bad.json").write_text(json.dumps({"data": {"val_sources": [{"root": "a", "typo": 1}]}}))
    with pytest.raises(EGMTError, match=r"val_sources\[0\]"):
        EGMTConfig.load(tmp_path / "bad.json")


def test_person_boxes_are_moved_into_the_crop_and_score_the_ir_correlation(tmp_path):
    """train.val_boxes: person boxes move with the central crop (half outside: dropped); the IR
    itself correlates 1 inside them, the flat visible image is undefined, a blend in between; the
    floor train.val_min_person_ir bars a validation below it."""
    from PIL import Image

    from egmt.train.validation import Validator

    root = tmp_path / "people"
    for sub in ("ir", "vi"):
        (root / sub).mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    ir = (torch.rand(96, 96, generator=g) * 200).to(torch.uint8)
    Image.fromarray(ir.numpy()).save(root / "ir" / "p.png")
    vi = torch.full((96, 96), 120, dtype=torch.uint8)
    vi[:, 48:] = (torch.rand(96, 48, generator=g) * 255).to(torch.uint8)  # textured on the right half
    Image.fromarray(vi.numpy()).save(root / "vi" / "p.png")
    boxes = {
        "p": [
            {"entity": "person", "box": [20, 20, 40, 60]},  # inside the 64 crop (offset 16): [4, 4, 24, 44]
            {"entity": "person", "box": [0, 0, 20, 20]},  # 4x4 of it inside the crop: dropped
            {"entity": "car", "box": [20, 20, 40, 60]},  # not a person
        ]
    }
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    cfg = EGMTConfig()
    cfg.data.val_sources = [DataSource(str(root))]
    cfg.train.val_crop = 64
    cfg.train.val_metrics = ["SSIM"]
    cfg.train.val_boxes = str(tmp_path / "boxes.json")
    cfg.train.val_min_person_ir = 0.9
    validator = Validator(cfg, None)
    assert validator.pairs[0].persons == [(4, 4, 24, 44)]
    refs = validator.reference_scores()
    assert refs["copy infrared"]["person_ir"] == pytest.approx(1.0)
    assert math.isnan(refs["copy visible"]["person_ir"])  # flat in the box: undefined
    assert 0.9 < refs["average"]["person_ir"] < 1.0  # the flat visible image only shifts it, rounding aside
    assert refs["copy infrared"]["person_boxes"] == 1
    # person_halo: the visible image darkened around the box, grey levels (none for the visible itself)
    from egmt.metrics.retention import surround_darkening

    crop = validator.pairs[0]
    assert refs["copy visible"]["person_halo"] == 0.0
    expected = 255 * surround_darkening(crop.vi[0].numpy(), crop.ir[0].numpy(), (4, 4, 24, 44))
    assert refs["copy infrared"]["person_halo"] == pytest.approx(expected) and expected > 10
    from egmt.bench.study import reference_rows

    assert reference_rows(cfg)["copy infrared"]["person_ir"] == pytest.approx(1.0)  # the study table's column
    assert reference_rows(cfg)["copy infrared"]["person_halo"] == pytest.approx(expected)
    # the floor: a fusion that keeps the IR inside the box passes, a noisy one does not
    noisy = validator.pairs[0].ir + 0.5 * torch.rand(validator.pairs[0].ir.shape, generator=g)
    below = validator.summarize([noisy.clamp(0, 1)])
    assert below["person_ir"] < 0.9 and not below["eligible"]
    assert validator.summarize([validator.pairs[0].ir])["eligible"]


def test_the_person_floor_on_each_source_is_not_outvoted_by_an_easier_source(tmp_path):
    """train.val_boxes may list several files (merged per pair); with train.val_person_floor =
    each_source a fusion that keeps one source's people and loses the other's fails the floor
    that the pooled mean would let it pass."""
    from PIL import Image

    from egmt.train.validation import Validator

    g = torch.Generator().manual_seed(1)
    roots = []
    for name in ("easy", "smoke"):
        root = tmp_path / name
        for sub in ("ir", "vi"):
            (root / sub).mkdir(parents=True)
        Image.fromarray((torch.rand(64, 64, generator=g) * 200).to(torch.uint8).numpy()).save(root / "ir" / f"{name}.png")
        Image.fromarray((torch.rand(64, 64, generator=g) * 255).to(torch.uint8).numpy()).save(root / "vi" / f"{name}.png")
        roots.append(root)
    person = [{"entity": "person", "box": [10, 10, 40, 50]}]
    for name in ("easy", "smoke"):
        (tmp_path / f"{name}.json").write_text(json.dumps({name: person}))
    cfg = EGMTConfig()
    cfg.data.val_sources = [DataSource(str(r)) for r in roots]
    cfg.train.val_crop = 0
    cfg.train.val_metrics = ["SSIM"]
    cfg.train.val_min_retention = None
    cfg.train.val_boxes = [str(tmp_path / "easy.json"), str(tmp_path / "smoke.json")]
    cfg.train.val_min_person_ir = 0.5
    validator = Validator(cfg, None)
    assert [len(p.persons) for p in validator.pairs] == [1, 1]
    # a box listed in two files counts once; another box of the same pair is added
    (tmp_path / "again.json").write_text(json.dumps({"easy": person + [{"entity": "person", "box": [0, 0, 20, 20]}]}))
    merged = EGMTConfig.from_dict(
        {**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "val_boxes": cfg.train.val_boxes + [str(tmp_path / "again.json")]}}
    )
    assert [len(p.persons) for p in Validator(merged, None).pairs] == [2, 1]
    # the easy source's people copied from the IR, the smoke source's taken from the visible image
    fused = [validator.pairs[0].ir, 0.2 * validator.pairs[1].ir + 0.8 * validator.pairs[1].vi]
    pooled = validator.summarize(fused)
    first, second = pooled["source_person_ir"]
    assert first == pytest.approx(1.0) and second < 0.5 and pooled["person_ir"] >= 0.5
    assert pooled["min_source_person_ir"] == pytest.approx(second) and pooled["eligible"]
    cfg.train.val_person_floor = "each_source"
    assert not Validator(cfg, None).summarize(fused)["eligible"]
    assert Validator(cfg, None).summarize([p.ir for p in validator.pairs])["eligible"]
    # the halo ceiling, read on the worst source: copying the IR darkens the visible image around
    # the box wherever the IR is darker; the visible image itself cuts no halo
    cfg.train.val_max_person_halo = 5.0
    checked = Validator(cfg, None)
    copy_ir = checked.summarize([p.ir for p in checked.pairs])
    assert copy_ir["max_source_person_halo"] == pytest.approx(max(copy_ir["source_person_halo"]))
    assert copy_ir["max_source_person_halo"] > 5.0
    assert not copy_ir["eligible"]
    assert checked.summarize([p.vi for p in checked.pairs])["max_source_person_halo"] == 0.0
    # anything but a path or a list of paths is one clear error
    with pytest.raises(EGMTError, match=r"train.val_boxes: expected a box file or a list of them"):
        Validator(EGMTConfig.from_dict({**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "val_boxes": [3]}}), None)
    # a source's own crop: the second source validated on a 32 crop, the first whole
    cfg.data.val_sources[1].val_crop = 32
    assert [tuple(p.ir.shape[-2:]) for p in Validator(cfg, None).pairs] == [(64, 64), (32, 32)]


def test_the_balance_floor_bars_a_fusion_that_copies_one_source(tmp_path):
    """train.val_min_ssim_min: SSIM_min is measured even when the score does not use it, copying
    either source fails the floor and the average of the two passes it; None lifts the floor."""
    from egmt.train.validation import Validator

    warm = _warm_target_pairs(tmp_path / "warm")
    cfg = EGMTConfig()
    cfg.data.val_sources = [DataSource(str(warm))]
    cfg.train.val_crop = 0
    cfg.train.val_metrics = ["MI"]
    cfg.train.val_fidelity_metrics = []
    cfg.train.val_min_retention = None
    cfg.train.val_min_ssim_min = 0.8
    validator = Validator(cfg, None)
    assert "SSIM_min" in validator.metrics
    refs = validator.reference_scores()
    for copy in ("copy infrared", "copy visible", "max(IR, VI)"):  # SSIM_min 0.67-0.75 on these pairs
        assert refs[copy]["fusion"]["SSIM_min"] < 0.8 and not refs[copy]["eligible"]
    assert refs["average"]["fusion"]["SSIM_min"] >= 0.8 and refs["average"]["eligible"]  # 0.88
    assert refs["average"]["min_ssim_min"] == 0.8
    assert validator.floors.met_by({"SSIM_min": 0.8}) and not validator.floors.met_by({"SSIM_min": 0.79})
    assert Floors().met_by({"SSIM_min": 0.1})


def test_a_token_classifier_run_gets_its_class_texts_and_keeps_them(tiny_dataset, tiny_config, tmp_path):
    """model.classifier="tokens": the trainer fills the class queries from the entity bank before
    the first step, and a checkpoint loads them back (inference needs no bank)."""
    from egmt.model import EGMT

    cfg = tiny_config(tiny_dataset, max_steps=1, save_every=1)
    cfg.model.classifier = "tokens"
    trainer = Trainer(cfg, tmp_path / "run")
    try:
        expected = trainer.features.class_text()
        assert torch.equal(trainer.model.classifier.class_text, expected) and expected.abs().sum() > 0
        trainer.fit()
        loaded = EGMT.from_pretrained(trainer.save())
    finally:
        trainer.close()
    assert torch.equal(loaded.classifier.class_text, expected)


def test_the_entity_target_keeps_the_infrared_only_where_a_given_entity_names_a_target_class(tiny_dataset, tiny_config, tmp_path):
    """loss.entity_target_classes: per sample, 1 when the entities the network is given name a
    target class or none are given, 0 otherwise; a class the vocabulary lacks, or another
    intensity target, is refused when the trainer starts."""
    batch = {"ir": torch.zeros(3, 1, 32, 32), "vi": torch.zeros(3, 1, 32, 32), "name": ["01", "02", "05"]}

    def trainer(name: str, classes: list[str], target: str = "contrast", **train) -> Trainer:
        cfg = tiny_config(tiny_dataset, **train)
        cfg.loss.intensity_target, cfg.loss.entity_target_classes = target, classes
        return Trainer(cfg, tmp_path / name)

    # 01 names a house, 02 does not, 05 has no entity at all
    assert trainer("house", ["house"])._batch(batch)["keep_ir"].tolist() == [1.0, 0.0, 1.0]
    assert trainer("dropped", ["house"], entity_drop_all=1.0)._batch(batch)["keep_ir"].tolist() == [1.0, 1.0, 1.0]
    assert trainer("off", [])._batch(batch)["keep_ir"] is None
    # train.entity_target_drop hides the target-class entities alone: the target follows
    hidden = trainer("hidden", ["house"], entity_target_drop=1.0)._batch(batch)
    assert hidden["keep_ir"].tolist() == [0.0, 0.0, 1.0]
    assert hidden["entity_mask"].sum(dim=1).tolist() == [2, 2, 0]  # 01 keeps person and tree
    # a sample the target drop leaves with no entity cannot tell which target it was meant for: contrast
    emptied = trainer("emptied", ["person", "tree"], entity_target_drop=1.0)._batch(batch)
    assert emptied["keep_ir"].tolist() == [0.0, 1.0, 1.0] and emptied["entity_mask"].sum(dim=1).tolist() == [1, 0, 0]
    unseen = tiny_config(tiny_dataset, entity_target_drop=1.0)  # w/o TI: the same targets, no entities
    unseen.loss.intensity_target, unseen.loss.entity_target_classes = "contrast", ["house"]
    unseen.model.text_interaction = False
    blind = Trainer(unseen, tmp_path / "blind")._batch(batch)
    assert blind["entities"] is None and blind["keep_ir"].tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(EGMTError, match="entity_target_drop needs loss.entity_target_classes"):
        trainer("nothing", [], entity_target_drop=0.5)
    with pytest.raises(EGMTError, match="expected a list of class names"):
        trainer("string", "person")  # type: ignore[arg-type]  # as --set loss.entity_target_classes=person gives it
    blind_cfg = tiny_config(tiny_dataset)
    blind_cfg.data.annotations, blind_cfg.model.text_interaction, blind_cfg.model.multi_task = None, False, False
    blind_cfg.loss.intensity_target, blind_cfg.loss.entity_target_classes = "contrast", ["person"]
    with pytest.raises(EGMTError, match="need --annotations"):
        Trainer(blind_cfg, tmp_path / "no-annotations")
    with pytest.raises(EGMTError, match="'boat' is not a class of the vocabulary"):
        trainer("boat", ["boat"])
    with pytest.raises(EGMTError, match="loss.entity_target_classes needs"):
        trainer("max", ["house"], target="max")
