import pytest

from egmt.errors import EGMTError
from egmt.text.entities import (
    dedupe,
    entity_sources,
    merge_entities,
    merge_with_sources,
    normalize_entity,
    parse_scene_graph,
    singular,
)

# ------------------------------------------------------------------ normalisation and merging


@pytest.mark.parametrize(
    "word, want",
    [
        ("trees", "tree"),
        ("buses", "bus"),
        ("men", "man"),
        ("women", "woman"),
        ("bus", "bus"),
        ("glass", "glass"),
        ("bushes", "bush"),
        ("boxes", "box"),
        ("bodies", "body"),
        ("suvs", "suv"),
        ("people", "people"),
        ("leaves", "leaf"),
        ("houses", "house"),
        ("grass", "grass"),
        ("lens", "lens"),
        ("tree", "tree"),
    ],
)
def test_singular(word, want):
    assert singular(word) == want


def test_normalize_entity():
    assert normalize_entity("The Street Lights.") == "street light"
    assert normalize_entity("  a   Palm_Trees ") == "palm tree"
    assert normalize_entity("(car") == "car"
    assert normalize_entity(" , ") == ""


def test_dedupe_case_plural_spacing():
    assert dedupe(["Car", "cars", "tree", "Trees", "street light", "streetlight", "street-lights", ""]) == [
        "car",
        "tree",
        "street light",
    ]


def test_merge_union_dedup_and_sources():
    ir = ["Woman", "road", "people", "trees"]
    vi = ["road", "Tree", "window", "building"]
    merged = merge_with_sources(ir, vi)
    assert [m.text for m in merged] == ["road", "tree", "woman", "window", "people", "building"]
    assert [m.source for m in merged] == ["both", "both", "ir", "vi", "ir", "vi"]
    assert merge_entities(ir, vi) == [m.text for m in merged]
    assert entity_sources(["road", "woman", "window", "dog"], ir, vi) == ["both", "ir", "vi", "none"]


def test_merge_caps_at_eight_keeping_shared_then_alternating():
    ir = ["a", "b", "c", "d", "e", "f", "shared"]
    vi = ["shared", "u", "v", "w", "x", "y", "z"]
    merged = merge_with_sources(ir, vi, max_entities=8)
    assert len(merged) == 8
    assert merged[0].text == "shared" and merged[0].source == "both"
    assert [m.text for m in merged[1:]] == ["a", "u", "b", "v", "c", "w", "d"]
    assert merge_entities(ir, vi, max_entities=3) == ["shared", "a", "u"]
    assert merge_entities(ir, vi, max_entities=0) == []
    assert merge_entities([], []) == []
    assert len(merge_entities([f"thing{i}" for i in range(20)], [], max_entities=8)) == 8
    with pytest.raises(EGMTError):
        merge_entities(ir, vi, max_entities=-1)


# ------------------------------------------------------------------ spaCy on real captions

REAL = [
    # (dataset, name, side, expected entities)
    ("msrs", "00004N", "ir", {"woman", "road", "people", "tree"}),
    ("msrs", "00081D", "ir", {"people", "van", "traffic cone", "building"}),
    ("msrs", "00020N", "vi", {"road", "tree", "street light", "building window"}),
    ("roadscene", "FLIR_00211", "ir", {"suv", "intersection", "street light", "tree"}),
    ("roadscene", "FLIR_00122", "ir", {"car", "street", "tyre"}),
    ("roadscene", "FLIR_00060", "vi", {"road", "palm tree"}),
    ("roadscene", "FLIR_00233", "vi", {"car", "suv", "traffic light", "palm tree"}),
    ("roadscene", "FLIR_00288", "ir", {"people", "sidewalk", "building", "tree"}),
    ("tno", "01", "vi", {"house", "toilet", "tree", "bush", "yard"}),
    ("tno", "06", "ir", {"road", "field", "building"}),
    ("tno", "08", "ir", {"fighter jet", "birch tree", "forest", "cloud"}),
    ("tno", "12", "vi", {"house", "shutter", "road sign", "street corner"}),
    ("tno", "25", "vi", {"street", "sign", "traffic light", "car"}),
]


def test_spacy_on_real_captions(caption_table, spacy_extractor):
    table = caption_table
    captions = [table[(ds, name)][side] for ds, name, side, _ in REAL]
    got = spacy_extractor.extract(captions)
    for (ds, name, side, want), caption, ents in zip(REAL, captions, got):
        assert set(ents) == want, f"{ds}/{name} {side}: {caption!r} -> {ents}"
        assert len(ents) == len(set(ents))


def test_spacy_drops_pronouns_abstract_words_and_descriptions(spacy_extractor):
    got = spacy_extractor.extract(
        [
            "It was a dark night; they saw him in the distance.",
            "a view of the scene in the background at dusk",
            "a silver car next to a brick house and a group of men",
            "",
        ]
    )
    assert got[0] == [] and got[1] == [] and got[3] == []
    assert got[2] == ["car", "house", "man"]


# ------------------------------------------------------------------ FACTUAL graph strings


def test_parse_well_formed_graph():
    g = parse_scene_graph("( man , ride , horse ) , ( man , is , young ) , ( horse , on , beach ) , ( horse , is , 2 )")
    assert g.entities == ["man", "horse", "beach"]
    assert g.relations == [("man", "ride", "horse"), ("horse", "on", "beach")]
    assert g.attributes == [("man", "young"), ("horse", "2")]
    assert g.malformed == []


@pytest.mark.parametrize(
    "text, entities, problem",
    [
        # FACTUAL's verb / passive / node-index markers
        ("( man:1 , v:walk on , street ) , ( man:2 , pv:hit by , car )", ["man", "street", "car"], None),
        # the prompt echoed back, plural and capitalised nodes
        ("Generate Scene Graph: ( Cars , park on , Streets )", ["car", "street"], None),
        # a lone node
        ("( tree )", ["tree"], None),
        # truncated last triple: its complete subject is kept
        ("( man , walk on , street ) , ( dog , ne", ["man", "street", "dog"], "truncated"),
        # truncated inside the subject: nothing kept from it
        ("( man , walk on , street ) , ( do", ["man", "street"], "truncated"),
        # two parts only
        ("( man , walking )", ["man"], "2 part"),
        # a comma inside the relation
        ("( man , next to , left of , car )", ["man", "car"], "more than 3"),
        # text outside brackets
        ("a man on a street", [], "outside brackets"),
        ("", [], None),
        # empty parts and attribute-only graph
        ("( , , ) , ( sky , is , dark )", ["sky"], "0 part"),
        # a count as object of a non-attribute relation is not an entity
        ("( car , has , 4 )", ["car"], None),
    ],
)
def test_parse_malformed_graphs(text, entities, problem):
    g = parse_scene_graph(text)
    assert g.entities == entities
    if problem is None:
        assert g.malformed == []
    else:
        assert any(problem in m for m in g.malformed), g.malformed
