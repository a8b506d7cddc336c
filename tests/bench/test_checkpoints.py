"""egmt.bench.checkpoints: NAME=DIR items checked before any folder is read."""

from __future__ import annotations

import pytest

from egmt.bench.checkpoints import named_checkpoints
from egmt.errors import EGMTError


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["no-equals-sign"], "--method no-equals-sign: expected NAME=DIR"),
        (["=dir"], "expected NAME=DIR"),
        (["a=x", "a=y"], "'a' is taken"),  # checked before x is read (it does not exist)
        (["average=x"], "'average' is taken"),
    ],
)
def test_bad_items_are_refused_before_any_folder_is_read(items, message):
    with pytest.raises(EGMTError, match=message):
        named_checkpoints(items, taken=["average"])


def test_folders_resolve_in_order(tmp_path):
    for name in ("b", "a"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"")
    got = named_checkpoints([f"second={tmp_path / 'b'}", f"first={tmp_path / 'a'}"])
    assert list(got) == ["second", "first"] and got["first"] == tmp_path / "a"
    with pytest.raises(EGMTError, match="not an egmt checkpoint"):
        named_checkpoints([f"c={tmp_path / 'missing'}"])
