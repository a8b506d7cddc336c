import pytest

from egmt.config import EGMTConfig
from egmt.errors import EGMTError


def test_config_round_trip(tmp_path):
    cfg = EGMTConfig()
    cfg.model.channels = 16
    cfg.train.max_steps = 7
    cfg.save(tmp_path / "config.json")
    back = EGMTConfig.load(tmp_path / "config.json")
    assert back == cfg
    assert back.model.channels == 16 and back.train.max_steps == 7


def test_config_rejects_unknown_key():
    d = EGMTConfig().to_dict()
    d["model"]["chanels"] = 3
    with pytest.raises(EGMTError, match="chanels"):
        EGMTConfig.from_dict(d)
