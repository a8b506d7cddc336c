"""Fixtures for the text pipeline: tiny random Hugging Face models saved to disk, real spaCy/MiniLM.

Hubs are out of reach, so BLIP-2, FACTUAL (T5) and CLIP are tested with tiny models built
from configs, ``save_pretrained`` to a temp folder and loaded back through the same loaders
a user runs. Their tokenizers are word-level ``tokenizers`` models over a small vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

WORDS = (
    "a an the man woman person people car cars tree trees on in at with near street road white dark "
    "building light is walking parked generate scene graph : ( ) , photo of night and two"
).split()


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """The models here are tiny or run on a few strings: one thread is faster on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def save_word_tokenizer(folder: Path, words=WORDS, bos: bool = False, extra_special=()) -> int:
    """Save a lowercase word-level fast tokenizer to ``folder``; return its vocabulary size."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, "<s>": 3}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    single = "<s> $A </s>" if bos else "$A </s>"
    tok.post_processor = processors.TemplateProcessing(single=single, special_tokens=[("<s>", 3), ("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", bos_token="<s>")
    if extra_special:
        fast.add_special_tokens({"additional_special_tokens": list(extra_special)})
    fast.save_pretrained(folder)
    return len(fast)


# Captions the tiny FACTUAL model is trained to parse, and the graphs it must write.
FACTUAL_EXAMPLES = {
    "a man walking on the street": "( man , walk on , street )",
    "a white car near two trees": "( car , near , tree )",
}


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory) -> Path:
    """A tiny T5 taught (a few seconds of Adam) to write the graphs of ``FACTUAL_EXAMPLES``."""
    from transformers import T5Config, T5ForConditionalGeneration

    d = tmp_path_factory.mktemp("tiny_factual")
    n = save_word_tokenizer(d, WORDS + "walk near".split())
    torch.manual_seed(0)
    cfg = T5Config(
        vocab_size=n,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    model = T5ForConditionalGeneration(cfg)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(d)
    src = tok(["Generate Scene Graph: " + c for c in FACTUAL_EXAMPLES], return_tensors="pt", padding=True)
    labels = tok(list(FACTUAL_EXAMPLES.values()), return_tensors="pt", padding=True).input_ids
    labels[labels == 0] = -100
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # several times faster for a model this small
    try:
        for _ in range(400):
            loss = model(**src, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            if loss.item() < 1e-2:
                break
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(d)
    return d


CLIP_TEXT = dict(
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    max_position_embeddings=32,
    pad_token_id=0,
    bos_token_id=3,
    eos_token_id=1,
)


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A tiny full CLIP checkpoint (text + vision towers, projection 24), like openai/clip-vit-*."""
    from transformers import CLIPConfig, CLIPModel

    d = tmp_path_factory.mktemp("tiny_clip")
    n = save_word_tokenizer(d, bos=True)
    torch.manual_seed(1)
    cfg = CLIPConfig(
        text_config=dict(CLIP_TEXT, vocab_size=n),
        vision_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
        ),
        projection_dim=24,
    )
    CLIPModel(cfg).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_clip_text_dir(tmp_path_factory) -> Path:
    """A tiny text-only CLIPTextModelWithProjection checkpoint (projection 20)."""
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    d = tmp_path_factory.mktemp("tiny_clip_text")
    n = save_word_tokenizer(d, bos=True)
    torch.manual_seed(2)
    CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_TEXT, vocab_size=n, projection_dim=20)).save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_blip2_dir(tmp_path_factory) -> Path:
    """A tiny random BLIP-2 (ViT 32x32, Q-Former, OPT) with its processor, saved to a folder."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, PreTrainedTokenizerFast

    try:  # transformers 5 without torchvision: the PIL image processor
        from transformers import BlipImageProcessorPil as BlipImageProcessor
    except ImportError:
        from transformers import BlipImageProcessor

    d = tmp_path_factory.mktemp("tiny_blip2")
    n = save_word_tokenizer(d, bos=True, extra_special=["<image>"])
    image_token = n - 1
    torch.manual_seed(3)
    cfg = Blip2Config(
        vision_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
        ),
        qformer_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, encoder_hidden_size=16, vocab_size=n
        ),
        text_config=dict(
            model_type="opt",
            vocab_size=n,
            hidden_size=16,
            ffn_dim=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            word_embed_proj_dim=16,
            max_position_embeddings=64,
            pad_token_id=0,
            bos_token_id=3,
            eos_token_id=1,
        ),
        num_query_tokens=4,
        image_token_index=image_token,
    )
    Blip2ForConditionalGeneration(cfg).save_pretrained(d)
    tok = PreTrainedTokenizerFast.from_pretrained(d)
    proc = Blip2Processor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tok, num_query_tokens=4)
    proc.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def spacy_extractor():
    from egmt.text.entities import SpacyExtractor

    return SpacyExtractor()


@pytest.fixture(scope="session")
def minilm():
    from egmt.text.encoders import load_encoder

    return load_encoder("minilm")


@pytest.fixture(scope="session")
def captions_dir(data_dir) -> Path:
    return data_dir / "captions"


@pytest.fixture(scope="session")
def caption_table(captions_dir) -> dict[tuple[str, str], dict]:
    """All shipped captions keyed by (dataset, name)."""
    out = {}
    for f in sorted(captions_dir.glob("*.jsonl")):
        for line in f.read_text().splitlines():
            d = json.loads(line)
            out[(d["dataset"], d["name"])] = d
    return out
