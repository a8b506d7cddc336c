import json

import pytest

from egmt.errors import EGMTError
from egmt.text.labels import DEFAULT_SYNONYMS, Vocabulary, load_synonyms

CLASSES = ["person", "car", "tree", "building", "road", "street light", "traffic light", "sidewalk", "truck"]


@pytest.fixture
def vocab():
    return Vocabulary(classes=list(CLASSES), synonyms=dict(DEFAULT_SYNONYMS))


@pytest.mark.parametrize(
    "entity, cls",
    [
        ("man", "person"),
        ("Women", "person"),
        ("pedestrians", "person"),
        ("people", "person"),
        ("a figure", "person"),
        ("car", "car"),
        ("van", "car"),
        ("SUVs", "car"),
        ("sedan", "car"),
        ("white minivan", "car"),
        ("palm trees", "tree"),
        ("birch tree", "tree"),
        ("house", "building"),
        ("apartment building", "building"),
        ("street", "road"),
        ("intersection", "road"),
        ("street lamps", "street light"),
        ("Street-Light", "street light"),
        ("lamp post", "street light"),
        ("streetlight", "street light"),
        ("traffic lights", "traffic light"),
        ("pickup truck", "truck"),
        ("crosswalk", "sidewalk"),
    ],
)
def test_synonym_map(vocab, entity, cls):
    assert vocab.canonical(entity) == cls


@pytest.mark.parametrize("entity", ["dog", "traffic cone", "sky", "", "light"])
def test_not_a_class(vocab, entity):
    assert vocab.canonical(entity) is None


def test_compound_not_shortened_to_unlisted_head():
    # "christmas light": "light" is not in the map, so it must not become a class named "light"
    v = Vocabulary(classes=["light", "tree"], synonyms={"tree": "tree"})
    assert v.canonical("christmas light") is None
    assert v.canonical("lights") == "light"


def test_labels_multi_hot(vocab):
    y = vocab.labels(["woman", "people", "suv", "palm tree", "dog"])
    assert len(y) == len(CLASSES)
    assert y == [1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert vocab.labels([]) == [0] * 9


def test_build_takes_most_frequent_per_pair():
    pairs = [
        ["man", "woman", "car"],  # person counted once for this pair
        ["people", "tree", "dog"],
        ["pedestrian", "van", "tree"],
        ["sky", "dog", "car"],
        ["tree", "building"],
    ]
    v = Vocabulary.build(pairs, num_classes=3)
    # person 3, car 3, tree 3, dog 2, building 1, sky 1 -> ties sorted alphabetically
    assert v.classes == ["car", "person", "tree"]
    assert v.positive_ratio == [0.6, 0.6, 0.6]
    v4 = Vocabulary.build(pairs, num_classes=4)
    assert v4.classes[3] == "dog" and v4.positive_ratio[3] == 0.4
    with pytest.raises(EGMTError, match="only 6 distinct"):
        Vocabulary.build(pairs, num_classes=7)


def test_build_with_custom_synonyms():
    v = Vocabulary.build([["van", "car"], ["van"], ["tree"]], num_classes=2, synonyms={})
    assert v.classes == ["van", "car"]  # no map: van (2 pairs) and car, tree tie -> alphabetical
    assert v.synonyms == {}


def test_save_load_round_trip(tmp_path, vocab):
    vocab.positive_ratio = [0.5] * 9
    vocab.save(tmp_path / "vocabulary.json")
    back = Vocabulary.load(tmp_path / "vocabulary.json")
    assert back.classes == vocab.classes and back.synonyms == vocab.synonyms and back.positive_ratio == vocab.positive_ratio
    assert back.canonical("pedestrians") == "person"
    d = json.loads((tmp_path / "vocabulary.json").read_text())
    assert set(d) == {"classes", "synonyms", "positive_ratio"}


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", "cannot read vocabulary"),
        ('{"synonyms": {}}', "no 'classes'"),
        ('{"classes": ["a", "a"]}', "repeated"),
        ('{"classes": ["a", "b"], "positive_ratio": [0.5]}', "1 positive ratios for 2 classes"),
        ('{"classes": ["a"], "positive_ratio": [1.5]}', r"\[0, 1\]"),
        ('{"classes": ["a"], "synonyms": {"x": 1}}', "map strings"),
    ],
)
def test_load_errors(tmp_path, content, message):
    p = tmp_path / "v.json"
    p.write_text(content)
    with pytest.raises(EGMTError, match=message) as e:
        Vocabulary.load(p)
    assert str(p) in str(e.value)


def test_load_synonyms_extends_overrides_removes(tmp_path):
    p = tmp_path / "syn.json"
    p.write_text(json.dumps({"Tractors": "farm vehicle", "van": "van", "palm tree": ""}))
    syn = load_synonyms(p)
    assert syn["tractor"] == "farm vehicle" and syn["van"] == "van" and "palm tree" not in syn
    assert syn["man"] == "person"  # defaults kept
    p.write_text("[1, 2]")
    with pytest.raises(EGMTError, match="syn.json"):
        load_synonyms(p)
