import json

import pytest

from egmt.errors import EGMTError
from egmt.text.annotations import PairAnnotation, read_annotations, write_annotations


def _ann(name="p1", labels=(1, 0, 1)):
    return PairAnnotation(
        name=name,
        ir_caption="a man on a road",
        vi_caption="a road with trees",
        ir_entities=["man", "road"],
        vi_entities=["road", "tree"],
        entities=["road", "man", "tree"],
        labels=list(labels),
    )


def test_round_trip_and_sources(tmp_path):
    path = tmp_path / "ds.jsonl"
    write_annotations(path, [_ann("p1"), _ann("p2", (0, 0, 0))])
    back = read_annotations(path)
    assert list(back) == ["p1", "p2"]
    assert back["p1"] == _ann("p1")
    assert back["p2"].labels == [0, 0, 0]
    assert back["p1"].sources() == ["both", "ir", "vi"]
    line = json.loads(path.read_text().splitlines()[0])
    assert set(line) == {"name", "ir_caption", "vi_caption", "ir_entities", "vi_entities", "entities", "labels"}
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / "ds.jsonl"
    write_annotations(path, [_ann("p1")])
    before = path.read_text()
    bad = _ann("p2")
    bad.labels = {1}  # not JSON serialisable
    with pytest.raises(TypeError):
        write_annotations(path, [_ann("p0"), bad])
    assert path.read_text() == before
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "invalid JSON"),
        ('["a list"]', "expected a JSON object"),
        (json.dumps({k: v for k, v in _ann().to_dict().items() if k != "labels"}), "missing key"),
        (json.dumps(dict(_ann().to_dict(), labels=[1, 2, 0])), "0/1"),
        (json.dumps(dict(_ann().to_dict(), labels=[True, False, True])), "0/1"),
        (json.dumps(dict(_ann().to_dict(), entities=["road", ""])), "non-empty strings"),
        (json.dumps(dict(_ann().to_dict(), ir_caption=None)), "ir_caption"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_ann("ok").to_dict()) + "\n" + line + "\n")
    with pytest.raises(EGMTError, match=message) as e:
        read_annotations(path)
    assert f"{path}:2" in str(e.value)


def test_repeated_name_and_label_length(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text(json.dumps(_ann("a").to_dict()) + "\n" + json.dumps(_ann("a").to_dict()) + "\n")
    with pytest.raises(EGMTError, match="appears twice"):
        read_annotations(path)
    path.write_text(json.dumps(_ann("a").to_dict()) + "\n" + json.dumps(_ann("b", (1, 0)).to_dict()) + "\n")
    with pytest.raises(EGMTError, match=r"dup.jsonl:2: 2 labels"):
        read_annotations(path)


def test_missing_and_empty_file(tmp_path):
    with pytest.raises(EGMTError, match="not found"):
        read_annotations(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(EGMTError, match="no annotations"):
        read_annotations(tmp_path / "empty.jsonl")


def test_class_text_is_the_mean_vector_of_the_entities_naming_each_class():
    """EntityFeatures.class_text: a class's query for the token classifier is the mean of the bank
    vectors whose canonical form is the class (synonyms included); a class nothing names is an error."""
    import torch

    from egmt.text.bank import EntityBank
    from egmt.text.features import EntityFeatures
    from egmt.text.labels import Vocabulary

    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0], [5.0, 5.0]])
    bank = EntityBank("test", 2, ["person", "pedestrian", "car", "tree"], vectors)
    vocab = Vocabulary(["person", "car"], synonyms={"pedestrian": "person"})
    text = EntityFeatures({}, bank, vocab).class_text()
    assert text.tolist() == [[0.5, 0.5], [3.0, 3.0]]  # "tree" is no class and counts for none
    with pytest.raises(EGMTError, match="'road'"):
        EntityFeatures({}, bank, Vocabulary(["person", "road"]), source="x.jsonl").class_text()


def test_the_text_tokens_are_the_entities_or_the_two_captions():
    """PairAnnotation.tokens: the merged entities (the paper), or the two captions (w/o ENT), one
    where both captions are the same text; another kind is a one-line error."""
    from egmt.errors import EGMTError
    from egmt.text.annotations import PairAnnotation

    ann = PairAnnotation("p", "a man in smoke", "a grey cloud", ["man"], ["cloud"], ["man", "cloud"], [1, 0])
    assert ann.tokens() == ["man", "cloud"]
    assert ann.tokens("captions") == ["man in smoke", "grey cloud"]  # as the entity bank keys them
    ann.vi_caption = "A man in smoke."
    assert ann.tokens("captions") == ["man in smoke"]
    with pytest.raises(EGMTError, match="unknown text tokens"):
        ann.tokens("words")
