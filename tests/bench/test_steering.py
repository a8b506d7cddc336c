"""Measures of entity steering: the pointing game, the steering share, the shuffle, the box files."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from egmt.bench import benchmark as bench
from egmt.bench.entity_effect import ConditionEntities, derangement
from egmt.bench.steering import (
    CONTRASTS,
    EntityRecord,
    PairRecord,
    contrast_for,
    measure_pair_entities,
    measure_steering,
    pointing_game,
    read_pair_images,
    steering_markdown,
    steering_share,
    SteeringResult,
)
from egmt.data.boxes import Box, box_mask, box_problems, read_boxes
from egmt.data.io import read_image
from egmt.data.pairs import Pair, find_pairs
from egmt.errors import EGMTError
from egmt.infer.fuser import EGMTFuser
from egmt.infer.heatmaps import EntityHeatmaps, entity_heatmaps
from egmt.text.labels import Vocabulary
from tests.shared_data import DATA, REPO, need_shared

BOX = Box("person", 10, 20, 30, 50)  # columns 10..29, rows 20..49


class StubFuser:
    """A fuser stand-in: the fused image of ``entities`` is ``images[entities[0]]`` (``default``
    when not listed), so every measure can be worked out by hand; records the inputs it is given."""

    vocabulary = None  # box classes are the entities in lower case

    def __init__(self, images: dict[str, np.ndarray], default: np.ndarray):
        self.images, self.default, self.inputs = images, default, []

    def __call__(self, ir, vi, entities=None):
        self.inputs.append((ir, vi, list(entities or [])))
        return SimpleNamespace(image=self.images.get((entities or [""])[0], self.default))


def flat_heatmaps(fuser, ir, vi, entities):
    """``entity_heatmaps`` stand-in: every entity's map flat (no maximum anywhere in particular)."""
    shape = ir.shape[:2]
    return EntityHeatmaps(list(entities), np.full((len(entities), *shape), 1 / len(entities)), np.zeros(shape))


def write_pair(folder: Path, name: str, ir: np.ndarray, vi: np.ndarray) -> Pair:
    paths = []
    for role, array in (("ir", ir), ("vi", vi)):
        (folder / role).mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(folder / role / f"{name}.png")
        paths.append(folder / role / f"{name}.png")
    return Pair(name, *paths)


def test_pointing_game_is_one_inside_and_zero_outside():
    mask = box_mask([BOX], (64, 80))
    inside, outside = np.zeros((64, 80)), np.zeros((64, 80))
    inside[49, 29] = 1.0  # the box's last pixel: half-open coordinates
    outside[50, 29] = 1.0  # one row below it
    assert pointing_game(inside, mask) == 1.0
    assert pointing_game(outside, mask) == 0.0
    # a flat map: every pixel is a maximum, the hit is the box's area share
    assert pointing_game(np.ones((64, 80)), mask) == pytest.approx(mask.mean())
    assert math.isnan(pointing_game(inside, np.zeros((64, 80), dtype=bool)))
    with pytest.raises(EGMTError, match="differ in size"):
        pointing_game(inside, mask[:10])


def test_steering_share_of_a_difference_inside_the_box():
    mask = box_mask([BOX], (64, 80))
    delta = np.zeros((64, 80))
    delta[25:40, 15:25] = -3.0  # all of it inside, negative values count by magnitude
    assert steering_share(delta, mask) == 1.0
    delta[0, 0] = 30.0  # one change outside: 30 of the 480 in all
    assert steering_share(delta, mask) == pytest.approx(450 / 480)
    # an even change scores the area share
    assert steering_share(np.full((64, 80), 2.0), mask) == pytest.approx(20 * 30 / (64 * 80))
    assert math.isnan(steering_share(np.zeros((64, 80)), mask))


def test_shuffle_is_a_deterministic_derangement():
    own = {f"p{i:02d}": [f"e{i % 4}", "road"] for i in range(12)}
    donors = derangement(own, seed=0)
    assert sorted(donors) == sorted(own) and sorted(donors.values()) == sorted(own)  # each donates once
    assert all(d != p for p, d in donors.items())
    # never a pair with the same entity set, while another choice exists
    assert all(set(own[p]) != set(own[d]) for p, d in donors.items())
    assert derangement(dict(reversed(list(own.items()))), seed=0) == donors  # the order given does not matter
    assert derangement(own, seed=1) != donors
    with pytest.raises(EGMTError, match="two pairs"):
        derangement({"a": ["x"]})
    shuffled = ConditionEntities("shuffled", own)
    assert shuffled("p00") == (own[donors["p00"]], "typed")


@pytest.mark.parametrize("name", ["boxes-val.json", "boxes-m3svd-0117_1605.json"])
def test_bundled_box_files_are_valid(name):
    data = need_shared(DATA, "real data")
    boxes = read_boxes(REPO / "annotations" / name)
    vocab = Vocabulary.load(REPO / "annotations" / "vocabulary.json")
    if name == "boxes-val.json":  # validation pairs only, and every one of them
        stems = [
            line
            for split in ("roadscene-val.txt", "m3svd-val.txt")
            for line in (REPO / "splits" / split).read_text().split()
            if not line.startswith("#")
        ]
        stems = [s for s in stems if not s.startswith("#") and (data / "roadscene" / "ir").is_dir()]
        names = {
            p.name: p
            for d, split in (("roadscene", "roadscene-val.txt"), ("m3svd", "m3svd-val.txt"))
            for p in find_pairs(data / d, REPO / "splits" / split)
        }
        assert set(boxes) == set(names)
    else:
        names = {p.name: p for p in find_pairs(data / "m3svd") if p.name in boxes}
        assert set(boxes) == set(names) and {b.entity for v in boxes.values() for b in v} == {"person"}
    sizes = {}
    for stem, pair in names.items():
        with Image.open(pair.ir) as im:
            sizes[stem] = (im.height, im.width)
    assert box_problems(boxes, sizes, vocab.classes) == []
    assert sum(map(len, boxes.values())) >= 10


def test_measure_pair_entities_on_a_real_pair(tiny_root, tiny_checkpoint):
    """The real network and heat maps end to end: one record per boxed class, in box order,
    against the first unboxed contrast, each measure in its range (the values: by hand below)."""
    fuser = EGMTFuser.from_pretrained(tiny_checkpoint, device="cpu")
    pair = next(p for p in bench.dataset_pairs(tiny_root / "data", "tno") if p.name == "01")
    boxes = [Box("person", 4, 4, 40, 60), Box("house", 50, 10, 78, 30)]
    records = measure_pair_entities(fuser, "tno", pair, boxes, ["person", "tree"])
    assert [(r.dataset, r.pair, r.entity, r.contrast) for r in records] == [
        ("tno", "01", "person", "tree"),
        ("tno", "01", "house", "tree"),
    ]
    assert [r.area for r in records] == pytest.approx([36 * 56 / (64 * 80), 28 * 20 / (64 * 80)])
    for r in records:
        assert 0.0 <= r.hit <= 1.0 and r.delta >= 0.0
        assert math.isnan(r.share) == (r.delta == 0.0)  # no share exactly when nothing changed
        assert math.isnan(r.share) or 0.0 <= r.share <= 1.0
    text = steering_markdown(SteeringResult(entities=records), "boxes.json")
    assert "| person | 1 |" in text and "| all | 2 |" in text


# The stub pair below: 32 x 40; the contrast [tree] gives grey 100 everywhere, [person] adds 10
# on rows 0..7, columns 0..19 (half of it in the person box, columns 0..9), [car] takes 30 off
# the whole car box (rows 16..31, columns 20..39).
SH, SW = 32, 40
STUB_BOXES = [Box("person", 0, 0, 10, 8), Box("car", 20, 16, 40, 32)]


def stub_images() -> tuple[dict[str, np.ndarray], np.ndarray]:
    base = np.full((SH, SW), 100 / 255)
    person, car = base.copy(), base.copy()
    person[0:8, 0:20] = 110 / 255
    car[16:32, 20:40] = 70 / 255
    return {"person": person, "car": car}, base


def test_pair_entity_records_worked_out_by_hand(tmp_path, monkeypatch):
    import egmt.bench.steering as steering

    ramp = np.tile(np.arange(SW, dtype=np.uint8) * 6, (SH, 1))
    pair = write_pair(tmp_path, "p", ramp, 255 - ramp)
    images, base = stub_images()
    fuser = StubFuser(images, base)
    fuser.vocabulary = SimpleNamespace(canonical={"pedestrian": "person"}.get)
    maps = {e: np.zeros((SH, SW)) for e in ("pedestrian", "person", "car")}
    # each person-class map alone peaks outside the person box; their sum (0.8) peaks inside it
    maps["pedestrian"][5, 5], maps["pedestrian"][25, 5] = 0.4, 0.5
    maps["person"][5, 5], maps["person"][20, 30] = 0.4, 0.5
    # the car map peaks one row above the car box (and higher than any person weight)
    maps["car"][15, 20], maps["car"][20, 25] = 0.9, 0.8
    asked: list[list[str]] = []

    def heatmaps(f, ir, vi, entities):
        asked.append(list(entities))
        return EntityHeatmaps(list(entities), np.stack([maps[e] for e in entities]), np.zeros((SH, SW)))

    monkeypatch.setattr(steering, "entity_heatmaps", heatmaps)
    records = measure_pair_entities(fuser, "d", pair, STUB_BOXES, ["pedestrian", "person"])
    assert asked == [["pedestrian", "person", "car"]]  # own entities, then the boxed class they lack
    assert records == [
        # 80 of 1280 pixels; hit: the summed maps; share: 800 of 1600; mean |Δ| 10 x 160 / 1280
        EntityRecord("d", "p", "person", "tree", area=0.0625, hit=1.0, share=0.5, delta=1.25),
        # 320 of 1280 pixels; the peak is outside; all of the change inside; 30 x 320 / 1280
        EntityRecord("d", "p", "car", "tree", area=0.25, hit=0.0, share=1.0, delta=7.5),
    ]
    assert [c[2] for c in fuser.inputs] == [["tree"], ["person"], ["car"]]
    ir = read_image(pair.ir)  # every fusion is given the pair's decoded images, decoded once
    assert all(c[0] is fuser.inputs[0][0] and c[1] is fuser.inputs[0][1] for c in fuser.inputs)
    assert np.array_equal(fuser.inputs[0][0], ir)


def test_own_vs_shuffled_worked_out_by_hand(tmp_path, monkeypatch):
    import egmt.bench.steering as steering

    monkeypatch.setattr(steering, "entity_heatmaps", flat_heatmaps)
    ramp = np.tile(np.arange(SW, dtype=np.uint8) * 6, (SH, 1))
    pairs = [write_pair(tmp_path, n, ramp, 255 - ramp) for n in ("p1", "p2")]
    images, base = stub_images()
    result = measure_steering(
        StubFuser(images, base),
        {"d": pairs},
        {n: STUB_BOXES for n in ("p1", "p2")},
        {"p1": ["person"], "p2": ["car"]},
        progress=False,
    )
    # two pairs: each is the other's donor; [person] against [car] differ by 10 on 160 pixels
    # and 30 on 320 others: mean |Δ| = (1600 + 9600) / 1280
    assert [(r.pair, r.donor, r.delta) for r in result.pairs] == [("p1", "p2", 8.75), ("p2", "p1", 8.75)]
    assert result.pairs[0].own == result.pairs[1].shuffled and result.pairs[0].own != result.pairs[0].shuffled
    assert [r.entity for r in result.entities] == ["person", "car"] * 2
    # flat heat maps: a tie everywhere, the hit is the box's area share (the pointing game's chance)
    assert [r.hit for r in result.entities] == [r.area for r in result.entities] == [0.0625, 0.25] * 2


def test_heatmap_figure_draws_boxes_and_reports_the_pointing_game(tiny_root, tiny_checkpoint, tmp_path):
    fuser = EGMTFuser.from_pretrained(tiny_checkpoint, device="cpu")
    pairs = bench.figure_pairs(bench.dataset_pairs(tiny_root / "data", "tno"), 1)
    resolver = bench.EntityResolver(annotations=tiny_root / "annotations" / "tno.jsonl")
    plain = bench.heatmap_block("tno", fuser, pairs, resolver, tmp_path / "plain.png", tmp_path / "r.md")
    boxed = bench.heatmap_block(
        "tno", fuser, pairs, resolver, tmp_path / "boxed.png", tmp_path / "r.md", {pairs[0].name: [Box("person", 4, 4, 40, 60)]}
    )
    assert "pointing game" not in plain and "pointing game" in boxed and "over 1 (pair, entity)" in boxed
    a = np.asarray(Image.open(tmp_path / "plain.png").convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(tmp_path / "boxed.png").convert("RGB"), dtype=np.int16)
    assert a.shape == b.shape and np.abs(a - b).max() > 100  # the white outline


def test_cli_heatmap_draws_boxes_and_prints_the_pointing_game(tiny_root, tiny_checkpoint, tmp_path, capsys):
    from egmt.cli import main as cli_main

    pair = next(p for p in bench.dataset_pairs(tiny_root / "data", "tno") if p.name == "01")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"01": [{"entity": "person", "box": [4, 4, 40, 60]}]}))
    base = [
        "heatmap",
        "--ir",
        str(pair.ir),
        "--vi",
        str(pair.vi),
        "--entities",
        "person, tree",
        "--checkpoint",
        str(tiny_checkpoint),
        "--device",
        "cpu",
    ]
    assert cli_main(base + ["-o", str(tmp_path / "a")]) == 0
    assert cli_main(base + ["-o", str(tmp_path / "b"), "--boxes", str(boxes)]) == 0
    out = capsys.readouterr().out
    assert "pointing game" in out and "over 1 boxed entities" in out
    a = np.asarray(Image.open(tmp_path / "a" / "01_person.png"), dtype=np.int16)
    b = np.asarray(Image.open(tmp_path / "b" / "01_person.png"), dtype=np.int16)
    assert (b[4, 4:40] == 255).all() and np.abs(a - b).max() > 0
    assert (
        np.asarray(Image.open(tmp_path / "a" / "01_tree.png")) == np.asarray(Image.open(tmp_path / "b" / "01_tree.png"))
    ).all()


def test_the_steering_contrast_is_the_first_unboxed_class_and_none_left_is_a_one_line_error():
    assert contrast_for(set()) == CONTRASTS[0]
    assert contrast_for({CONTRASTS[0]}) == CONTRASTS[1]
    with pytest.raises(EGMTError, match="all boxed"):  # a skipped pair, not a StopIteration ending the run
        contrast_for(set(CONTRASTS))


def test_measure_steering_decodes_each_source_file_once(tiny_root, tiny_checkpoint, monkeypatch):
    import egmt.bench.steering as steering
    import egmt.data.io
    import egmt.infer.fuser
    import egmt.infer.heatmaps

    reads: Counter[Path] = Counter()
    real = egmt.data.io.read_image

    def counting(path):
        reads[Path(path)] += 1
        return real(path)

    for module in (steering, egmt.infer.fuser, egmt.infer.heatmaps):  # every place that decodes a file
        monkeypatch.setattr(module, "read_image", counting)
    fuser = EGMTFuser.from_pretrained(tiny_checkpoint, device="cpu")
    pairs = [p for p in bench.dataset_pairs(tiny_root / "data", "tno") if p.name in ("01", "02")]
    boxes = {"01": [Box("person", 4, 4, 40, 60)], "02": [Box("person", 4, 4, 40, 60), Box("house", 50, 10, 78, 30)]}
    own = {"01": ["person", "house", "tree"], "02": ["person", "tree"]}
    result = measure_steering(fuser, {"tno": pairs}, boxes, own, progress=False)
    assert result.skipped == [] and len(result.entities) == 3 and [r.pair for r in result.pairs] == ["01", "02"]
    # about 3 + 2 x classes fusions per pair, but one decoding of each file
    assert reads == Counter({path: 1 for p in pairs for path in (p.ir, p.vi)})


def test_fusing_the_decoded_images_gives_what_fusing_the_files_gives(tiny_root, tiny_checkpoint):
    """What reading each pair once relies on: the fuser and the heat maps give the same numbers
    from :func:`read_pair_images`' arrays as from the files."""
    fuser = EGMTFuser.from_pretrained(tiny_checkpoint, device="cpu")
    pair = next(p for p in bench.dataset_pairs(tiny_root / "data", "tno") if p.name == "01")
    ir, vi = read_pair_images(pair)
    for entities in (["tree"], ["person"], ["person", "house", "tree"]):
        assert np.array_equal(fuser(pair.ir, pair.vi, entities=entities).image, fuser(ir, vi, entities=entities).image)
    a, b = entity_heatmaps(fuser, pair.ir, pair.vi, ["person", "tree"]), entity_heatmaps(fuser, ir, vi, ["person", "tree"])
    assert np.array_equal(a.maps, b.maps)
    assert ir.max() <= 1.0 and vi.max() <= 1.0  # the fuser's input: floats in [0, 1], as read_image gives


def test_a_pair_of_two_sizes_is_skipped_naming_its_files(tmp_path):
    ir, vi = tmp_path / "ir.png", tmp_path / "vi.png"
    Image.fromarray(np.zeros((32, 40), np.uint8)).save(ir)
    Image.fromarray(np.zeros((32, 48), np.uint8)).save(vi)
    pair = Pair("p", ir, vi)
    with pytest.raises(EGMTError, match="sizes differ") as e:
        read_pair_images(pair)
    assert str(ir) in str(e.value) and str(vi) in str(e.value)
    logged: list[str] = []
    result = measure_steering(None, {"d": [pair]}, {"p": [Box("person", 0, 0, 8, 8)]}, {}, progress=False, log=logged.append)
    assert result.entities == [] and len(result.skipped) == 1 and str(vi) in result.skipped[0]
    assert logged == [f"steering: {result.skipped[0]}"]


def test_undefined_scores_are_counted_in_the_table_and_logged(tmp_path, monkeypatch):
    import egmt.bench.steering as steering

    monkeypatch.setattr(steering, "entity_heatmaps", flat_heatmaps)
    # black sources: Qabf has no edge to measure and is undefined; MI is defined (0)
    black = np.zeros((32, 40), np.uint8)
    pairs = [write_pair(tmp_path, n, black, black) for n in ("p1", "p2")]
    boxes = {n: [Box("person", 0, 0, 8, 8)] for n in ("p1", "p2")}
    fuser = StubFuser({}, np.zeros((32, 40)))
    logged: list[str] = []
    result = measure_steering(fuser, {"d": pairs}, boxes, {"p1": ["person"], "p2": ["car"]}, progress=False, log=logged.append)
    assert result.skipped == [] and [r.pair for r in result.pairs] == ["p1", "p2"]
    for r in result.pairs:
        assert [e.split(":")[0] for e in r.errors] == ["own Qabf", "shuffled Qabf"]
        assert "no edges" in r.errors[0]
        assert math.isnan(r.own["Qabf"]) and r.own["MI"] == 0.0
    assert len([line for line in logged if "score undefined" in line]) == 4
    text = steering_markdown(result, "b.json")
    assert "**4 score(s) undefined**" in text and "d p1 own Qabf: Qabf is undefined" in text
    assert "| d | 2 | 0.000 | 0.000 | 0.000 | – | – |" in text  # MI own, MI shuffled; no Qabf mean


def test_the_note_names_the_first_undefined_scores_and_counts_the_rest():
    pairs = [
        PairRecord("d", f"p{i}", "x", 0.0, {"MI": 1.0, "Qabf": math.nan}, {"MI": 1.0, "Qabf": 0.5}, ["own Qabf: why"])
        for i in range(7)
    ]
    text = steering_markdown(SteeringResult(pairs=pairs), "b.json")
    assert "**7 score(s) undefined**" in text and "d p4 own Qabf: why; and 2 more." in text and "d p5" not in text
    assert "| d | 7 | 0.000 | 1.000 | 1.000 | – | 0.500 |" in text
    assert "undefined" not in steering_markdown(
        SteeringResult(pairs=[PairRecord("d", "p", "x", 0.0, {"MI": 1.0, "Qabf": 0.5}, {"MI": 1.0, "Qabf": 0.5})]), "b.json"
    )


def test_steering_table_has_one_area_column_and_averages_by_hand():
    recs = [
        EntityRecord("d", "a", "person", "tree", area=0.1, hit=1.0, share=0.5, delta=0.2),
        EntityRecord("d", "b", "person", "tree", area=0.3, hit=0.0, share=math.nan, delta=0.0),  # no pixel changed
        EntityRecord("d", "a", "car", "tree", area=0.2, hit=0.0, share=0.1, delta=0.4),
    ]
    text = steering_markdown(SteeringResult(entities=recs), "b.json")
    header = next(line for line in text.splitlines() if line.startswith("| Entity"))
    assert header == "| Entity | (pair, entity) | Box area share (chance) | Pointing game | Steering share | Lift | mean abs Δ |"
    assert "Chance |" not in text and "| Area share" not in text
    # person: area (0.1 + 0.3) / 2, hit 0.5, share 0.5 (the NaN left out), lift 0.5 / 0.2, delta 0.1
    assert "| person | 2 | 0.20 | 0.50 | 0.50 | 2.50 | 0.100 |" in text
    assert "| car | 1 | 0.20 | 0.00 | 0.10 | 0.50 | 0.400 |" in text
    assert "| all | 3 | 0.20 | 0.33 | 0.30 | 1.50 | 0.200 |" in text
    assert "1 of 3 (pair, entity) changed no pixel" in text
    assert "changed no pixel" not in steering_markdown(SteeringResult(entities=recs[:1]), "b.json")
