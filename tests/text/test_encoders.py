import shutil
import socket

import pytest
import torch

from egmt.errors import EGMTError
from egmt.text.encoders import load_encoder

# all-MiniLM-L6-v2 through sentence-transformers 6.2 (Transformer -> mean Pooling -> Normalize),
# first six components: an independent reference for our transformers-only MiniLM encoder.
ST_REFERENCE = {
    "street light": [0.012858022, 0.012141866, 0.039203476, 0.063527763, -0.042880263, -0.020567352],
    "a man walking on the street": [0.058880948, -0.067365251, 0.035838701, 0.031906534, 0.005876136, -0.037973654],
}


def _cos(a, b):
    return float(torch.nn.functional.cosine_similarity(a, b, dim=-1))


def test_minilm_matches_sentence_transformers(minilm):
    v = minilm.encode(list(ST_REFERENCE))
    assert v.shape == (2, 384) and minilm.dim == 384
    torch.testing.assert_close(v.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(v[:, :6], torch.tensor(list(ST_REFERENCE.values())), atol=1e-5, rtol=0)


def test_minilm_paraphrase_closer_than_unrelated(minilm):
    a, para, other = minilm.encode(["a man walking on the street", "a person strolling along the road", "a bowl of hot soup"])
    assert _cos(a, para) > _cos(a, other) + 0.3
    car, automobile, tree = minilm.encode(["car", "automobile", "tree"])
    assert _cos(car, automobile) > _cos(car, tree)


def test_minilm_batching_does_not_change_vectors(minilm):
    texts = ["car", "a tall building next to a dark road", "street light"]
    torch.testing.assert_close(minilm.encode(texts), torch.cat([minilm.encode([t]) for t in texts]), atol=1e-5, rtol=0)
    assert minilm.encode([]).shape == (0, 384)
    with pytest.raises(EGMTError, match="empty text"):
        minilm.encode(["car", " "])


def test_minilm_loads_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    enc = load_encoder("minilm")
    assert enc.encode(["car"]).shape == (1, 384)


@pytest.mark.parametrize("fixture, dim", [("tiny_clip_dir", 24), ("tiny_clip_text_dir", 20)])
def test_tiny_clip_loads_from_disk_and_matches_transformers(request, fixture, dim):
    from transformers import AutoModel, AutoTokenizer

    path = request.getfixturevalue(fixture)
    enc = load_encoder("clip", str(path))
    assert (enc.name, enc.dim) == ("clip", dim)
    texts = ["a man on the street", "car", "white building near trees"]
    got = enc.encode(texts)
    assert got.shape == (3, dim)
    # reference: the same checkpoint through transformers' own CLIP classes
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    ids = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        if hasattr(model, "get_text_features"):
            ref = model.get_text_features(**ids)
            ref = ref if isinstance(ref, torch.Tensor) else ref.pooler_output
        else:  # AutoModel gives the bare CLIPTextModel: project its pooled output by hand
            from safetensors.torch import load_file

            w = load_file(path / "model.safetensors")["text_projection.weight"]
            ref = model(**ids).pooler_output @ w.T
    torch.testing.assert_close(got, torch.nn.functional.normalize(ref, dim=-1), atol=1e-5, rtol=0)


def test_wrong_model_folders_are_clear_errors(tmp_path, tiny_t5_dir, tiny_clip_text_dir):
    with pytest.raises(EGMTError, match="holds a 't5' model, not a CLIP model"):
        load_encoder("clip", str(tiny_t5_dir))
    with pytest.raises(EGMTError, match="holds a 'clip_text_model' model, not a MiniLM"):
        load_encoder("minilm", str(tiny_clip_text_dir))
    with pytest.raises(EGMTError, match="no config.json"):
        load_encoder("clip", str(tmp_path))
    with pytest.raises(EGMTError, match="not a folder; looked in the Hugging Face cache"):
        load_encoder("clip", "nobody/no-such-model")
    with pytest.raises(EGMTError, match="unknown text encoder 'bert'"):
        load_encoder("bert")
    # a CLIP config over weights that are not CLIP's: an error, not random layers
    fake = tmp_path / "fake_clip"
    shutil.copytree(tiny_clip_text_dir, fake)
    shutil.copy(tiny_t5_dir / "model.safetensors", fake / "model.safetensors")
    with pytest.raises(EGMTError, match="weights do not fit the CLIP text model"):
        load_encoder("clip", str(fake))
    # no weights at all
    (fake / "model.safetensors").unlink()
    with pytest.raises(EGMTError, match="cannot load the CLIP text model"):
        load_encoder("clip", str(fake))
