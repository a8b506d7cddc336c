"""The entity-effect table: EGMT with the pair's own entities, unrelated ones, none, caption-free."""

from __future__ import annotations

import numpy as np
import pytest

from egmt.bench import benchmark as bench
from egmt.bench.entity_effect import (
    CONDITIONS,
    EFFECT_METRICS,
    TITLES,
    UNRELATED_ENTITIES,
    ConditionEntities,
    unrelated_entities,
)
from egmt.errors import EGMTError
from egmt.infer.fuser import EGMTFuser
from egmt.text.annotations import read_annotations
from egmt.train.checkpoint import resolve_checkpoint
from tests.bench.test_benchmark import _options, _table


@pytest.fixture(scope="module")
def effect_run(tiny_root, tiny_checkpoint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("effect")
    options = _options(tiny_root, tmp, tiny_checkpoint, datasets=["tno"], methods=["egmt"], tables=["fusion", "entities"])
    return options, bench.run_benchmark(options)


def _grey(image: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(image, 0, 1) * 255.0)


def test_differences_are_measured_against_the_own_entities_output(effect_run, tiny_root, tiny_checkpoint):
    options, result = effect_run
    effect = result.entity_effect["tno"]
    assert effect.pairs == 2  # pair 05 has no entity of its own: left out
    assert effect.difference["own"] == (0.0, 0.0)
    # recompute each condition's |Δ| from the fuser's outputs directly
    fuser = EGMTFuser.from_pretrained(tiny_checkpoint, device="cpu")
    ann = read_annotations(tiny_root / "annotations" / "tno.jsonl")
    pairs = {p.name: p for p in bench.dataset_pairs(tiny_root / "data", "tno")}
    for condition, entities_of in (("none", lambda own: []), ("unrelated", unrelated_entities)):
        means, top = [], 0.0
        for name in ("01", "02"):
            own = _grey(fuser(pairs[name].ir, pairs[name].vi, entities=ann[name].entities).image)
            other = _grey(fuser(pairs[name].ir, pairs[name].vi, entities=entities_of(ann[name].entities)).image)
            means.append(np.abs(own - other).mean())
            top = max(top, np.abs(own - other).max())
        mean, mx = effect.difference[condition]
        assert mean == pytest.approx(np.mean(means), abs=1e-9) and mx == top
        assert mean > 0
    # without validation.json the tiny checkpoint's caption-free fusion uses no entity: the same as E = 0
    assert effect.difference["caption_free"] == effect.difference["none"]
    assert effect.scores["caption_free"] == effect.scores["none"]
    assert effect.caption_free_source.startswith("none (no validation.json")


def test_own_entities_row_scores_egmts_own_images(effect_run):
    options, result = effect_run
    own_dir = options.out / "tno" / "entity-effect" / "own"
    for name in ("01", "02"):
        assert (own_dir / f"{name}.png").read_bytes() == (options.out / "tno" / "egmt" / f"{name}.png").read_bytes()
    effect = result.entity_effect["tno"]
    assert list(effect.scores) == list(CONDITIONS) and list(effect.scores["own"]) == list(EFFECT_METRICS)
    assert all(np.isfinite(v) for row in effect.scores.values() for v in row.values())


def test_results_file_has_the_table(effect_run):
    options, result = effect_run
    text = options.results.read_text(encoding="utf-8")
    assert "## Entity effect: own, unrelated and no entities" in text
    assert text.index("## Fusion quality") < text.index("## Entity effect")
    rows = _table(text, "TNO: 2 of 3 pairs")
    assert rows[0][:4] == ["EGMT fused with", "Pairs", "mean abs Δ", "max abs Δ"]
    assert [r[0] for r in rows[2:]] == [TITLES[c] for c in CONDITIONS]
    effect = result.entity_effect["tno"]
    none = next(r for r in rows if r[0] == TITLES["none"])
    assert none[2] == f"{effect.difference['none'][0]:.2f}" and none[1] == "2"
    assert ", ".join(UNRELATED_ENTITIES) in text


def test_conditions_are_cached_per_checkpoint(effect_run, tiny_root, tiny_checkpoint):
    options, _ = effect_run
    again = bench.run_benchmark(options)
    assert all(again.fuse_stats[("tno", f"entity-effect/{c}")].cached == 2 for c in CONDITIONS)
    stamp = options.out / "tno" / "entity-effect" / "fused" / "none" / bench.STAMP_FILE
    stamp.write_text(stamp.read_text().replace('"sha256": "', '"sha256": "0'))  # as if made by another checkpoint
    third = bench.run_benchmark(options)
    assert third.fuse_stats[("tno", "entity-effect/none")].fused == 2
    assert third.fuse_stats[("tno", "entity-effect/own")].fused == 0


def test_nothing_is_fused_twice(effect_run):
    _, result = effect_run
    # "own" is egmt's output of the fusion table; caption-free with E = 0 (no validation.json) is "none"
    assert result.fuse_stats[("tno", "egmt")].fused == 3
    assert result.fuse_stats[("tno", "entity-effect/own")].cached == 2
    assert result.fuse_stats[("tno", "entity-effect/none")].fused == 2
    assert result.fuse_stats[("tno", "entity-effect/caption_free")].cached == 2


def test_caption_free_with_a_validated_classifier_is_fused_on_its_own(tiny_root, tiny_checkpoint, tmp_path):
    import json
    import shutil

    folder = tmp_path / "ckpt"
    shutil.copytree(resolve_checkpoint(tiny_checkpoint), folder)
    (folder / "validation.json").write_text(
        json.dumps({"step": 2, "rule": "test", "fusion": {}, "classification": {"map": 0.9, "prior_map": 0.1}})
    )
    options = _options(
        tiny_root, tmp_path, folder, datasets=["tno"], methods=["egmt"], tables=["entities"], threshold=0.0
    )  # every class becomes an entity
    result = bench.run_benchmark(options)
    effect = result.entity_effect["tno"]
    assert result.fuse_stats[("tno", "entity-effect/caption_free")].fused == 2
    assert effect.caption_free_source == "classifier"
    assert effect.difference["caption_free"] != effect.difference["none"]


def test_condition_entities():
    own = {"a": ["Sky", "person"]}
    assert ConditionEntities("own", own)("a") == (["Sky", "person"], "annotations")
    assert ConditionEntities("unrelated", own)("a")[0] == ["boat", "water", "dog", "ocean"]
    assert ConditionEntities("none", own)("a")[0] == []
    assert ConditionEntities("caption_free", own)("a")[0] is None
    with pytest.raises(EGMTError, match="unknown entity condition"):
        ConditionEntities("random", own)
