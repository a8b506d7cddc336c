"""egmt.data.boxes: box files read with one-line errors naming the file, the pair and the box;
half-open pixel coordinates in masks, areas and outlines; problems against image sizes and classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from egmt.data.boxes import Box, box_mask, box_problems, draw_boxes, read_boxes
from egmt.errors import EGMTError


def write(tmp_path, content) -> Path:
    path = tmp_path / "boxes.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def one(box, entity="car"):
    return {"a": [{"entity": entity, "box": box}]}


@pytest.mark.parametrize(
    "content, cause",
    [
        ("{", "not a JSON box file"),
        (b"\xff\xfe{}", "not a JSON box file"),  # not UTF-8
        ("[1]", "expected a JSON object"),
        ({"a": {"entity": "car", "box": [0, 0, 1, 1]}}, "pair 'a': expected a list of boxes"),
        ({"a": ["car"]}, "pair 'a', box 0: expected {\"entity\": NAME"),
        ({"a": [{"box": [0, 0, 1, 1]}]}, "pair 'a', box 0: expected {\"entity\": NAME"),
        ({"a": [{"entity": "  ", "box": [0, 0, 1, 1]}]}, 'expected {"entity": NAME'),  # an empty entity
        ({"a": [{"entity": 5, "box": [0, 0, 1, 1]}]}, 'expected {"entity": NAME'),
        ({"a": [{"entity": "car"}]}, "the box must be four integers"),
        (one([1, 2, 3]), "the box must be four integers"),
        (one([1, 2, 3, 4, 5]), "the box must be four integers"),
        (one([1.0, 2, 3, 4]), "the box must be four integers"),
        (one([True, 0, 3, 4]), "the box must be four integers"),  # a bool is not a coordinate
        (one(["1", 2, 3, 4]), "the box must be four integers"),
        (one([5, 5, 5, 9]), "expected 0 <= x0 < x1 and 0 <= y0 < y1, got [5, 5, 5, 9]"),  # empty: x0 == x1
        (one([9, 5, 5, 9]), "got [9, 5, 5, 9]"),  # inverted columns
        (one([1, 9, 5, 2]), "got [1, 9, 5, 2]"),  # inverted rows
        (one([-1, 0, 5, 9]), "got [-1, 0, 5, 9]"),  # before the image's first column
        (one([0, -3, 5, 9]), "got [0, -3, 5, 9]"),
    ],
)
def test_a_bad_box_file_is_one_line_naming_the_file_and_the_cause(tmp_path, content, cause):
    path = write(tmp_path, content)
    with pytest.raises(EGMTError) as e:
        read_boxes(path)
    message = str(e.value)
    assert message.startswith(f"{path}: ") and cause in message and "\n" not in message


def test_the_error_names_the_pair_and_the_box_at_fault(tmp_path):
    path = write(
        tmp_path,
        {
            "a": [{"entity": "car", "box": [0, 0, 4, 4]}],
            "b": [{"entity": "car", "box": [0, 0, 4, 4]}, {"entity": "tree", "box": [4, 4, 2, 8]}],
        },
    )
    with pytest.raises(EGMTError, match=r"pair 'b', box 1: expected 0 <= x0 < x1"):
        read_boxes(path)


def test_a_missing_box_file_is_named(tmp_path):
    with pytest.raises(EGMTError) as e:
        read_boxes(tmp_path / "nope.json")
    assert str(e.value).startswith(f"{tmp_path / 'nope.json'}: cannot read the box file") and "\n" not in str(e.value)


def test_a_good_file_keeps_pairs_and_boxes_in_order_with_entities_normalised(tmp_path):
    path = write(
        tmp_path,
        {
            "b": [{"entity": " Street Light ", "box": [3, 1, 4, 2]}, {"entity": "car", "box": [0, 0, 640, 480]}],
            "a": [],  # a pair without boxes is allowed
        },
    )
    boxes = read_boxes(path)
    assert list(boxes) == ["b", "a"]
    assert boxes == {"b": [Box("street light", 3, 1, 4, 2), Box("car", 0, 0, 640, 480)], "a": []}


def test_area_and_mask_are_half_open():
    box = Box("person", 2, 1, 5, 3)  # columns 2, 3, 4 and rows 1, 2
    assert box.area() == 6
    expected = np.zeros((4, 6), dtype=bool)
    expected[1, 2:5] = expected[2, 2:5] = True
    np.testing.assert_array_equal(box_mask([box], (4, 6)), expected)
    one_pixel = Box("person", 5, 3, 6, 4)  # the image's last pixel
    assert one_pixel.area() == 1 and box_mask([one_pixel], (4, 6))[3, 5] and box_mask([one_pixel], (4, 6)).sum() == 1


def test_mask_is_the_union_clipped_to_the_image():
    a, b = Box("car", 0, 0, 4, 4), Box("car", 2, 2, 6, 6)  # overlap 2 x 2
    mask = box_mask([a, b], (8, 8))
    assert mask.dtype == bool and mask.sum() == 16 + 16 - 4
    past = box_mask([Box("car", 6, 6, 20, 20)], (8, 8))  # reaches past the border: clipped, no error
    assert past.sum() == 4 and past[6:, 6:].all()
    assert not box_mask([], (8, 8)).any()


def test_box_problems_against_sizes_and_classes():
    sizes = {"a": (40, 30)}  # (H, W): 30 wide, 40 high
    # ends exactly at the right and bottom borders: inside (half-open)
    assert box_problems({"a": [Box("car", 0, 0, 30, 40)]}, sizes, ["car"]) == []
    assert box_problems({"a": [Box("car", 0, 0, 31, 40)]}, sizes, ["car"]) == ["a: car box [0, 0, 31, 40] past the 30x40 image"]
    assert box_problems({"a": [Box("car", 0, 0, 30, 41)]}, sizes, ["car"]) == ["a: car box [0, 0, 30, 41] past the 30x40 image"]
    assert box_problems({"a": [Box("boat", 0, 0, 5, 5)]}, sizes, ["car"]) == ["a: entity 'boat' is not one of the classes"]
    assert len(box_problems({"a": [Box("boat", 0, 0, 31, 5)]}, sizes, ["car"])) == 2  # both said
    assert box_problems({"z": [Box("car", 0, 0, 5, 5)], "a": []}, sizes, ["car"]) == ["z: no such pair"]


def test_draw_boxes_outlines_inside_the_box_on_a_copy():
    grey = np.zeros((64, 80))
    box = Box("person", 10, 20, 30, 50)  # columns 10..29, rows 20..49
    image = draw_boxes(grey, [box], (1.0, 0.5, 0.0), width=2)
    assert image.shape == (64, 80, 3) and not grey.any()  # grey becomes RGB; the input is untouched
    red = image[..., 0] == 1.0
    expected = box_mask([box], (64, 80)) & ~box_mask([Box("x", 12, 22, 28, 48)], (64, 80))  # a 2-pixel ring
    np.testing.assert_array_equal(red, expected)
    assert (image[20, 10] == [1.0, 0.5, 0.0]).all()
    assert not image[50, 10:30].any() and not image[20:50, 30].any()  # row y1 and column x1 are outside


def test_draw_boxes_clips_and_skips_boxes_past_the_border():
    rgb = np.zeros((10, 10, 3))
    out = draw_boxes(rgb, [Box("car", 5, 5, 30, 30), Box("car", 20, 20, 25, 25)], width=1)
    assert not rgb.any()
    ring = box_mask([Box("x", 5, 5, 10, 10)], (10, 10)) & ~box_mask([Box("x", 6, 6, 9, 9)], (10, 10))
    np.testing.assert_array_equal(out[..., 1] == 1.0, ring)  # the clipped box's outline; the outside one: nothing
    # a box narrower than two outlines is filled, not drawn past its own side
    small = draw_boxes(np.zeros((10, 10)), [Box("car", 2, 2, 5, 4)], width=3)
    np.testing.assert_array_equal(small[..., 0] == 1.0, box_mask([Box("car", 2, 2, 5, 4)], (10, 10)))
