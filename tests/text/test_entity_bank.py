import pytest
import torch

from egmt.errors import EGMTError
from egmt.text.bank import EntityBank
from tests.helpers import CountingEncoder


def test_bank_returns_the_encoders_vectors(minilm):
    bank = EntityBank.for_encoder(minilm)
    bank.add(["car", "Street Lights", "palm tree"], minilm)
    assert bank.strings == ["car", "street light", "palm tree"]
    got = bank.lookup(["palm tree", "car", "street light"])
    want = torch.cat([minilm.encode(["palm tree"]), minilm.encode(["car"]), minilm.encode(["street light"])])
    assert got.shape == (3, 384) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    # lookups are case/plural-insensitive, like de-duplication
    torch.testing.assert_close(bank.lookup(["Cars"]), want[1:2], atol=1e-5, rtol=0)


def test_add_encodes_only_new_entities(minilm):
    enc = CountingEncoder(minilm)
    bank = EntityBank.for_encoder(enc)
    assert bank.add(["car", "tree", "trees"], enc) == ["car", "tree"]
    assert bank.add(["tree", "Car", "road"], enc) == ["road"]
    assert bank.add(["road"], enc) == []
    assert enc.calls == [["car", "tree"], ["road"]]
    assert "roads" in bank and "sky" not in bank and len(bank) == 3


def test_lookup_empty_and_unknown(minilm):
    bank = EntityBank.for_encoder(minilm)
    bank.add(["car"], minilm)
    assert bank.lookup([]).shape == (0, 384)
    with pytest.raises(EGMTError, match="'dog' is not in the entity bank"):
        bank.lookup(["car", "dog"])


def test_save_load_round_trip(tmp_path, minilm):
    bank = EntityBank.for_encoder(minilm)
    bank.add(["car", "traffic cone", "person"], minilm)
    bank.save(tmp_path / "b.safetensors")
    back = EntityBank.load(tmp_path / "b.safetensors")
    assert (back.encoder, back.dim, back.strings, back.model) == ("minilm", 384, bank.strings, minilm.model_id)
    assert torch.equal(back.vectors, bank.vectors)
    empty = EntityBank("clip", 768)
    empty.save(tmp_path / "e.safetensors")
    assert len(EntityBank.load(tmp_path / "e.safetensors")) == 0


def test_encoder_mismatch_is_an_error(minilm):
    bank = EntityBank("clip", 768)
    with pytest.raises(EGMTError, match="holds clip vectors"):
        bank.add(["car"], minilm)
    other = EntityBank("minilm", 384, model="0123456789ab")
    with pytest.raises(EGMTError, match="checkpoint 0123456789ab"):
        other.add(["car"], minilm)


def test_load_rejects_non_banks(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(EGMTError, match="not found"):
        EntityBank.load(tmp_path / "nope.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(EGMTError, match="junk.safetensors: cannot read entity bank"):
        EntityBank.load(tmp_path / "junk.safetensors")
    save_file({"weight": torch.zeros(2, 3)}, tmp_path / "model.safetensors")
    with pytest.raises(EGMTError, match="no 'vectors' tensor"):
        EntityBank.load(tmp_path / "model.safetensors")
    save_file({"vectors": torch.zeros(2, 3)}, tmp_path / "nometa.safetensors", metadata={"encoder": "minilm"})
    with pytest.raises(EGMTError, match="metadata lacks"):
        EntityBank.load(tmp_path / "nometa.safetensors")
    save_file(
        {"vectors": torch.zeros(2, 3)},
        tmp_path / "short.safetensors",
        metadata={"encoder": "minilm", "dim": "3", "strings": '["car"]'},
    )
    with pytest.raises(EGMTError, match="do not match 1 strings"):
        EntityBank.load(tmp_path / "short.safetensors")
