import json

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


def _literal_fields():
    """(section, field, allowed values) of every Literal-typed setting, found from the hints."""
    import dataclasses
    import typing

    from egmt.config import _choices

    found = []
    for section in dataclasses.fields(EGMTConfig):
        hints = typing.get_type_hints(type(getattr(EGMTConfig(), section.name)))
        for name, hint in hints.items():
            if _choices(hint) is not None:
                found.append((section.name, name, _choices(hint)))
    return found


def test_the_string_choices_are_literals():
    names = {f"{s}.{n}" for s, n, _ in _literal_fields()}
    assert {
        "data.small_images",
        "text.captioner",
        "text.extractor",
        "text.encoder",
        "model.fusion_output",
        "model.layout",
        "loss.task_weighting",
        "loss.ssim_form",
        "train.lr_schedule",
    } <= names


@pytest.mark.parametrize("section, name, allowed", _literal_fields())
def test_every_choice_loads_and_anything_else_is_a_one_line_error(section, name, allowed, tmp_path):
    from egmt.config import apply_override

    for value in allowed:  # every allowed value loads, from a file and through --set
        d = EGMTConfig().to_dict()
        d[section][name] = value
        assert getattr(getattr(EGMTConfig.from_dict(d), section), name) == value
        cfg = EGMTConfig()
        apply_override(cfg, f"{section}.{name}={value}")
        assert getattr(getattr(cfg, section), name) == value
    d = EGMTConfig().to_dict()
    d[section][name] = "xyz"
    (tmp_path / "config.json").write_text(json.dumps(d))
    listed = ", ".join(repr(v) for v in allowed)
    with pytest.raises(EGMTError) as e:
        EGMTConfig.load(tmp_path / "config.json")
    assert str(e.value) == f"{tmp_path / 'config.json'}: config.{section}.{name}: 'xyz' is not one of {listed}"
    cfg = EGMTConfig()
    with pytest.raises(EGMTError) as e:
        apply_override(cfg, f"{section}.{name}=xyz")
    assert str(e.value) == f"{section}.{name}: 'xyz' is not one of {listed}"
    assert getattr(getattr(cfg, section), name) == getattr(getattr(EGMTConfig(), section), name)  # unchanged


def test_bad_set_value_is_one_line_from_the_cli(tmp_path, capsys):
    from egmt.cli import main

    assert main(["train", "--set", "model.layout=xyz", "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err == "egmt: error: model.layout: 'xyz' is not one of 'pixel', 'patch'\n"
    assert not (tmp_path / "run").exists()
