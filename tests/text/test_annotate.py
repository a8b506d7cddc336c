"""The whole pipeline (``annotate_dataset`` and ``egmt annotate``) and the committed annotation files."""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from egmt.cli import main
from egmt.config import TextConfig
from egmt.errors import EGMTError
from egmt.data.pairs import read_split
from egmt.text.annotate import annotate_dataset, list_pairs
from tests.helpers import CountingEncoder
from egmt.text.annotations import read_annotations
from egmt.text.bank import EntityBank
from egmt.text.labels import Vocabulary

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "annotations"

CAPTIONS = {
    "a": ("a man walking on a road with trees", "a road with trees and a white car"),
    "b": ("two people near a parked car", "a car parked next to a building"),
    "c": ("a dark street with a street light", "a street at night with a tall building and a street light"),
    "d": ("a woman and a dog on a sidewalk", "a sidewalk next to a house with trees"),
    "e": ("trees along a road at night", "a road lined with palm trees"),
}


def make_dataset(root: Path, names=CAPTIONS, captions=CAPTIONS, dataset="toy") -> Path:
    """Tiny images ROOT/{ir,vi}/NAME.png and a caption file ROOT/captions.jsonl."""
    for side in ("ir", "vi"):
        (root / side).mkdir(parents=True, exist_ok=True)
        for n in names:
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / side / f"{n}.png")
    lines = [json.dumps({"dataset": dataset, "name": n, "ir": ir, "vi": vi}) for n, (ir, vi) in captions.items()]
    (root / "captions.jsonl").write_text("\n".join(lines) + "\n")
    (root / "train.txt").write_text("a\nb\nc\n")
    return root


def never():
    raise AssertionError("the encoder was loaded although no entity was new")


def test_annotate_builds_vocab_labels_and_bank(tmp_path, spacy_extractor, minilm):
    root = make_dataset(tmp_path / "toy")
    out = tmp_path / "out"
    cfg = TextConfig(num_classes=3)
    res = annotate_dataset(
        root,
        root / "captions.jsonl",
        out,
        cfg,
        build_vocab=True,
        split="train.txt",
        extractor=spacy_extractor,
        encoder=minilm,
        progress=False,
    )
    assert res.annotations_path == out / "toy.jsonl" and res.warnings == []
    anns = read_annotations(out / "toy.jsonl")
    assert list(anns) == ["a", "b", "c", "d", "e"]
    vocab = Vocabulary.load(out / "vocabulary.json")
    # train = a, b, c: building, car, person and road (street -> road) in 2 pairs each; ties go alphabetically
    assert vocab.classes == ["building", "car", "person"]
    train = [anns[n].entities for n in "abc"]
    assert vocab.positive_ratio == Vocabulary.build(train, 3).positive_ratio
    a = anns["a"]
    assert (a.ir_entities, a.vi_entities) == (["man", "road", "tree"], ["road", "tree", "car"])
    assert a.entities == ["road", "tree", "man", "car"] and a.sources() == ["both", "both", "ir", "vi"]
    for ann in anns.values():
        assert ann.labels == vocab.labels(ann.entities)
        assert 1 <= len(ann.entities) <= 8
    bank = EntityBank.load(out / "entity_bank.safetensors")
    assert (bank.encoder, bank.dim) == ("minilm", 384)
    for ann in anns.values():
        torch.testing.assert_close(bank.lookup(ann.entities), minilm.encode(ann.entities), atol=1e-5, rtol=0)


def test_second_dataset_adds_to_the_bank_encoding_only_new_entities(tmp_path, spacy_extractor, minilm):
    first = make_dataset(tmp_path / "one")
    out = tmp_path / "out"
    annotate_dataset(
        first,
        first / "captions.jsonl",
        out,
        TextConfig(num_classes=3),
        build_vocab=True,
        extractor=spacy_extractor,
        encoder=minilm,
        progress=False,
    )
    before = EntityBank.load(out / "entity_bank.safetensors")
    second = make_dataset(tmp_path / "two", names={"x": 0}, captions={"x": ("a man near a tractor", "a tractor on a road")})
    enc = CountingEncoder(minilm)
    res = annotate_dataset(
        second,
        second / "captions.jsonl",
        out,
        TextConfig(num_classes=3),
        vocab=out / "vocabulary.json",
        dataset="two",
        extractor=spacy_extractor,
        encoder=lambda: enc,
        progress=False,
    )
    assert enc.calls == [["tractor"]] and res.new_entities == ["tractor"]
    after = EntityBank.load(out / "entity_bank.safetensors")
    assert after.strings == before.strings + ["tractor"]
    assert torch.equal(after.vectors[: len(before)], before.vectors)
    assert sorted(p.name for p in out.iterdir()) == ["entity_bank.safetensors", "one.jsonl", "two.jsonl", "vocabulary.json"]
    # again: nothing new, so the encoder is never even loaded
    annotate_dataset(
        second,
        second / "captions.jsonl",
        out,
        TextConfig(num_classes=3),
        dataset="two",
        extractor=spacy_extractor,
        encoder=never,
        progress=False,
    )


def test_missing_captions_are_an_error_or_skipped_with_warnings(tmp_path, spacy_extractor, minilm, caplog):
    caps = {k: v for k, v in CAPTIONS.items() if k not in ("b", "d")}
    root = make_dataset(tmp_path / "toy", captions=caps)
    with pytest.raises(EGMTError, match=r"no captions for 2 of 5 pairs .* \(e.g. 'b'\).*--allow-missing"):
        annotate_dataset(
            root,
            root / "captions.jsonl",
            tmp_path / "out",
            TextConfig(num_classes=2),
            build_vocab=True,
            extractor=spacy_extractor,
            encoder=minilm,
            progress=False,
        )
    assert not (tmp_path / "out").exists()
    with caplog.at_level(logging.WARNING, logger="egmt.text"):
        res = annotate_dataset(
            root,
            root / "captions.jsonl",
            tmp_path / "out",
            TextConfig(num_classes=2),
            build_vocab=True,
            allow_missing=True,
            extractor=spacy_extractor,
            encoder=minilm,
            progress=False,
        )
    assert [a.name for a in res.annotations] == ["a", "c", "e"]
    assert res.warnings == [
        "toy/b: no captions, pair skipped (no annotation written)",
        "toy/d: no captions, pair skipped (no annotation written)",
    ]
    assert "toy/b: no captions" in caplog.text


def test_empty_captions_warn_per_pair(tmp_path, spacy_extractor, minilm):
    caps = dict(CAPTIONS, b=("", "a car parked next to a building"), e=(" ", ""))
    root = make_dataset(tmp_path / "toy", captions=caps)
    res = annotate_dataset(
        root,
        root / "captions.jsonl",
        tmp_path / "out",
        TextConfig(num_classes=2),
        build_vocab=True,
        extractor=spacy_extractor,
        encoder=minilm,
        progress=False,
    )
    assert "toy/b: empty IR caption, its entities come from the other caption only" in res.warnings
    assert any(w.startswith("toy/e: empty VIS caption") for w in res.warnings)
    assert any(w.startswith("toy/e: no entities in either caption") for w in res.warnings)
    e = read_annotations(tmp_path / "out" / "toy.jsonl")["e"]
    assert e.entities == [] and e.labels == [0, 0]
    b = read_annotations(tmp_path / "out" / "toy.jsonl")["b"]
    assert b.ir_entities == [] and b.entities == ["car", "building"]


def test_folder_disagreements_fail_before_any_model(tmp_path, spacy_extractor, minilm):
    root = make_dataset(tmp_path / "toy")
    out = tmp_path / "out"
    annotate_dataset(
        root,
        root / "captions.jsonl",
        out,
        TextConfig(num_classes=3),
        build_vocab=True,
        extractor=spacy_extractor,
        encoder=minilm,
        progress=False,
    )
    with pytest.raises(EGMTError, match="holds minilm features, not clip"):
        annotate_dataset(root, root / "captions.jsonl", out, TextConfig(encoder="clip"), extractor=spacy_extractor, encoder=never)
    with pytest.raises(EGMTError, match="already holds a different vocabulary"):
        annotate_dataset(
            root,
            root / "captions.jsonl",
            out,
            TextConfig(num_classes=2),
            build_vocab=True,
            extractor=spacy_extractor,
            encoder=never,
            progress=False,
        )
    with pytest.raises(EGMTError, match="no vocabulary"):
        annotate_dataset(
            root, root / "captions.jsonl", tmp_path / "empty", TextConfig(), extractor=spacy_extractor, encoder=never
        )
    with pytest.raises(EGMTError, match="needs --build-vocab"):
        annotate_dataset(root, root / "captions.jsonl", out, TextConfig(), split="train.txt", extractor=spacy_extractor)
    (root / "bad_split.txt").write_text("a\nzzz\n")
    with pytest.raises(EGMTError, match="1 stem.*'zzz'"):
        annotate_dataset(
            root,
            root / "captions.jsonl",
            tmp_path / "o2",
            TextConfig(),
            build_vocab=True,
            split="bad_split.txt",
            extractor=spacy_extractor,
            encoder=minilm,
        )


def test_list_pairs_and_split(tmp_path):
    root = make_dataset(tmp_path / "toy")
    (root / "ir" / "lonely.png").write_bytes(b"")
    assert [p.name for p in list_pairs(root)] == ["a", "b", "c", "d", "e"]
    with pytest.raises(EGMTError, match="missing 'ir/' folder"):
        list_pairs(tmp_path)
    shutil.rmtree(root / "vi")
    with pytest.raises(EGMTError, match="toy/vi: missing 'vi/' folder"):
        list_pairs(root)


def test_cli_annotate(tmp_path, capsys):
    root = make_dataset(tmp_path / "toy")
    out = tmp_path / "out"
    rc = main(
        [
            "annotate",
            str(root),
            "--captions",
            str(root / "captions.jsonl"),
            "--build-vocab",
            "--split",
            "train.txt",
            "--num-classes",
            "3",
            "-o",
            str(out),
            "--examples",
            "2",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0
    assert "| entities per pair |" in text and "- a: IR 'a man walking on a road with trees'" in text
    assert "entities: road [both], tree [both], man [ir], car [vi]" in text
    assert len(read_annotations(out / "toy.jsonl")) == 5
    # errors are one line, exit code 2, no traceback
    rc = main(
        ["annotate", str(root), "--captions", str(root / "nope.jsonl"), "--vocab", str(out / "vocabulary.json"), "-o", str(out)]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("egmt: error: ") and "nope.jsonl: caption file not found" in err and "Traceback" not in err
    rc = main(["annotate", str(root), "-o", str(out)])
    assert rc == 2 and "--captions FILE is needed" in capsys.readouterr().err


# ------------------------------------------------------------------ the committed annotations


@pytest.fixture(scope="module")
def committed():
    if not (COMMITTED / "vocabulary.json").exists():
        pytest.skip("annotations/ not in this checkout")
    return {
        "vocab": Vocabulary.load(COMMITTED / "vocabulary.json"),
        "bank": EntityBank.load(COMMITTED / "entity_bank.safetensors"),
        **{d: read_annotations(COMMITTED / f"{d}.jsonl") for d in ("roadscene", "tno", "msrs")},
    }


def test_committed_annotations_are_consistent(committed, data_dir):
    vocab, bank = committed["vocab"], committed["bank"]
    assert len(vocab.classes) == 9 and (bank.encoder, bank.dim) == ("minilm", 384)
    for d, n in [("roadscene", 221), ("tno", 25), ("msrs", 9)]:
        anns = committed[d]
        assert len(anns) == n
        for a in anns.values():
            assert 1 <= len(a.entities) <= 8
            assert all(e == e.lower() for e in a.entities)
            assert a.labels == vocab.labels(a.entities)
            assert "unknown" not in a.sources()
            assert bank.lookup(a.entities).shape == (len(a.entities), 384)
    train = read_split(data_dir / "roadscene" / "train.txt")
    assert vocab.positive_ratio == vocab.class_frequency([committed["roadscene"][s].entities for s in train])


def test_pipeline_reproduces_committed_roadscene(committed, data_dir, tmp_path, spacy_extractor):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(COMMITTED / "entity_bank.safetensors", out)  # every entity known: no encoder needed
    res = annotate_dataset(
        data_dir / "roadscene",
        data_dir / "captions" / "roadscene.jsonl",
        out,
        TextConfig(),
        build_vocab=True,
        split="train.txt",
        extractor=spacy_extractor,
        encoder=never,
        progress=False,
    )
    assert res.new_entities == []
    assert res.vocabulary.to_dict() == committed["vocab"].to_dict()
    assert {a.name: a for a in res.annotations} == committed["roadscene"], (
        "annotations/ is stale: regenerate it (annotations/README.md)"
    )


def test_paper_pipeline_blip2_factual_clip_through_the_cli(tmp_path, capsys, tiny_blip2_dir, tiny_t5_dir, tiny_clip_dir):
    """BLIP-2 captions -> FACTUAL entities -> CLIP features, every model loaded from its folder by the CLI."""
    root = make_dataset(tmp_path / "toy")
    out = tmp_path / "out"
    Vocabulary(classes=["person", "car", "road"], synonyms={"man": "person", "street": "road"}).save(tmp_path / "v.json")
    rc = main(
        [
            "annotate",
            str(root),
            "--captioner",
            "blip2",
            "--captioner-path",
            str(tiny_blip2_dir),
            "--save-captions",
            str(tmp_path / "blip2_captions.jsonl"),
            "--entities",
            "factual",
            "--extractor-path",
            str(tiny_t5_dir),
            "--encoder",
            "clip",
            "--encoder-path",
            str(tiny_clip_dir),
            "--vocab",
            str(tmp_path / "v.json"),
            "--batch-size",
            "2",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    anns = read_annotations(out / "toy.jsonl")
    assert list(anns) == list(CAPTIONS)
    saved = [json.loads(line) for line in (tmp_path / "blip2_captions.jsonl").read_text().splitlines()]
    assert [(d["name"], d["ir"], d["vi"]) for d in saved] == [(a.name, a.ir_caption, a.vi_caption) for a in anns.values()]
    bank = EntityBank.load(out / "entity_bank.safetensors")
    assert (bank.encoder, bank.dim) == ("clip", 24)
    for a in anns.values():
        assert len(a.labels) == 3 and bank.lookup(a.entities).shape == (len(a.entities), 24)


def test_blip2_runs_in_bfloat16(tiny_blip2_dir, tmp_path):
    from egmt.text.captions import Blip2Captioner

    Image.fromarray(np.full((20, 30, 3), 128, np.uint8)).save(tmp_path / "x.png")
    cap = Blip2Captioner(str(tiny_blip2_dir), dtype="bfloat16")
    assert cap.model.dtype == torch.bfloat16
    assert isinstance(cap.caption_images([tmp_path / "x.png"])[0], str)


def test_synonyms_file_shapes_the_vocabulary(tmp_path, spacy_extractor, minilm):
    root = make_dataset(tmp_path / "toy")
    (tmp_path / "syn.json").write_text(json.dumps({"building": "structure", "house": "structure", "car": "vehicle"}))
    res = annotate_dataset(
        root,
        root / "captions.jsonl",
        tmp_path / "out",
        TextConfig(num_classes=3, synonyms=str(tmp_path / "syn.json")),
        build_vocab=True,
        split="train.txt",
        extractor=spacy_extractor,
        encoder=minilm,
        progress=False,
    )
    assert res.vocabulary.classes == ["person", "road", "structure"]  # 2 pairs each; vehicle also 2 -> alphabetical
    assert Vocabulary.load(tmp_path / "out" / "vocabulary.json").synonyms["car"] == "vehicle"
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(EGMTError, match="bad.json: cannot read synonyms"):
        annotate_dataset(
            root,
            root / "captions.jsonl",
            tmp_path / "o2",
            TextConfig(synonyms=str(tmp_path / "bad.json")),
            build_vocab=True,
            extractor=spacy_extractor,
            encoder=never,
        )
