"""Typed entities missing from the checkpoint's bank: encoded with the bank's encoder, one
warning naming them (README: "Entities"), an error only when that encoder cannot be loaded."""

from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image

import egmt.text.encoders
from egmt.cli import main as cli_main
from egmt.infer.fuser import EGMTFuser
from tests.helpers import RandomEncoder


def _pairs(folder, n=3):
    rng = np.random.default_rng(1)
    for side in ("ir", "vi"):
        (folder / side).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(folder / side / f"{i}.png")


def test_unknown_entities_are_encoded_once_with_one_warning(checkpoint, caplog):
    fuser = EGMTFuser.from_pretrained(checkpoint, device="cpu")
    fuser._encoder = RandomEncoder()  # the bank's "random" encoder, as load_encoder would give it
    with caplog.at_level(logging.WARNING, logger="egmt.infer"):
        feats = fuser.entity_features(["car", "dragon", "unicorn", "dragon"])
        again = fuser.entity_features(["dragon", "unicorn"])
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["encoding 2 entities not in the checkpoint's entity bank with random: dragon, unicorn"]
    assert torch.equal(feats[1], RandomEncoder().encode(["dragon"])[0]) and torch.equal(feats[1], feats[3])
    assert torch.equal(again, feats[1:3])


def test_cli_fuses_a_folder_with_an_unknown_typed_entity_and_says_so_once(checkpoint, tmp_path, monkeypatch, caplog, capsys):
    _pairs(tmp_path)
    calls = []

    def fake_load(name, path=None, **kw):
        calls.append(name)
        return RandomEncoder()

    monkeypatch.setattr(egmt.text.encoders, "load_encoder", fake_load)
    with caplog.at_level(logging.WARNING, logger="egmt.infer"):
        code = cli_main(
            [
                "fuse",
                "--ir",
                str(tmp_path / "ir"),
                "--vi",
                str(tmp_path / "vi"),
                "-o",
                str(tmp_path / "out"),
                "--checkpoint",
                str(checkpoint),
                "--device",
                "cpu",
                "--entities",
                "person, dragon",
            ]
        )
    assert code == 0
    assert calls == ["random"]  # the encoder is loaded once, for the first pair
    assert [r.getMessage() for r in caplog.records] == [
        "encoding 1 entity not in the checkpoint's entity bank with random: dragon"
    ]
    table = (tmp_path / "out" / "entities.csv").read_text()
    assert table.count("person; dragon") == 3


def test_a_pair_missing_from_the_given_file_is_said(tmp_path, caplog):
    """--captions / --annotations that do not name a pair: one warning naming the pair and the
    file, then the next source in order (typed entities, else caption-free), never silently."""
    import json
    import logging

    from egmt.infer.entities import EntityResolver

    captions = tmp_path / "captions.jsonl"
    captions.write_text(json.dumps({"name": "known", "ir": "a man", "vi": "a road"}) + "\n")
    with caplog.at_level(logging.WARNING, logger="egmt.infer.entities"):
        assert EntityResolver(captions=captions, warn_missing=True)("other") == (None, "none")
        assert EntityResolver(captions=captions, typed=["car"], warn_missing=True)("other") == (["car"], "typed")
        assert EntityResolver(typed=["car"], warn_missing=True)("other") == (["car"], "typed")  # no file: nothing to say
        assert EntityResolver(captions=captions)("other") == (None, "none")  # the benchmark's: silent
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [
        f"pair 'other' is not in {captions}: fused caption-free",
        f"pair 'other' is not in {captions}: fused with the typed --entities",
    ]
