"""torchrun's environment read once for training and sharded fusion (``DistInfo.from_env``)."""

import pytest

from egmt.errors import EGMTError
from egmt.train.distributed import DistInfo


def test_from_env_reads_torchruns_variables(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert DistInfo.from_env() is None  # not started by torchrun
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = DistInfo.from_env()
    assert info == DistInfo(3, 4, 1) and info.enabled and not info.is_main


def test_a_world_without_ranks_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(EGMTError, match="WORLD_SIZE=2 without RANK"):
        DistInfo.from_env()
