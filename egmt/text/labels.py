"""Label vocabulary: the K pseudo-label classes, the synonym map onto them, multi-hot labels.

Paper (Sec. III-C/D, IV): entities serve as pseudo-labels of a multi-label classifier with
nine classes; the class set and how entities map onto it are not given. We map entities
through an editable synonym map (``DEFAULT_SYNONYMS`` below, or a JSON file ``{word: class}``
given with ``--synonyms``) and take the K most frequent canonical entities of a training
split as the classes. ``positive_ratio[k]`` is the share of training pairs whose label k is
1, for the focal loss's class-balancing alpha (eq. 15).

Saved as ``vocabulary.json``: ``{"classes": [...], "synonyms": {word: class}, "positive_ratio": [...]}``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from egmt.errors import EGMTError
from egmt.fileio import read_json, write_text_atomic
from egmt.text.entities import entity_key, normalize_entity

# Synonyms for driving and surveillance scenes (RoadScene/FLIR, TNO, MSRS, M3FD): several
# words for one kind of thing -> one class name. Keys are normalised entities (lowercase,
# singular). Edit here, or pass a JSON file of the same shape (it extends and overrides this).
DEFAULT_SYNONYMS: dict[str, str] = {
    # people
    **dict.fromkeys(
        """person people man woman pedestrian boy girl child kid guy lady gentleman worker figure crowd
        soldier officer policeman cyclist biker bicyclist rider skateboarder jogger runner walker
        passerby human""".split(),
        "person",
    ),
    # passenger cars and vans
    **dict.fromkeys(
        """car van suv sedan minivan taxi cab hatchback wagon coupe jeep vehicle automobile convertible
        limousine""".split(),
        "car",
    ),
    "station wagon": "car",
    "sports car": "car",
    "sport car": "car",
    "police car": "car",
    "race car": "car",
    "passenger car": "car",
    "pickup": "truck",
    # trucks and buses
    **dict.fromkeys("truck lorry trailer tractor".split(), "truck"),
    "pickup truck": "truck",
    "box truck": "truck",
    "semi truck": "truck",
    "fire truck": "truck",
    "dump truck": "truck",
    **dict.fromkeys("bus minibus coach".split(), "bus"),
    "school bus": "bus",
    "city bus": "bus",
    # two wheelers
    **dict.fromkeys("bicycle bike".split(), "bicycle"),
    **dict.fromkeys("motorcycle motorbike scooter moped".split(), "motorcycle"),
    # vegetation
    **dict.fromkeys("tree palm pine oak birch cypress".split(), "tree"),
    **{f"{w} tree": "tree" for w in "palm pine oak birch cypress maple willow fir christmas".split()},
    **dict.fromkeys("bush shrub hedge shrubbery".split(), "bush"),
    # buildings
    **dict.fromkeys(
        """building house home farmhouse barn church store shop cafe restaurant school hotel office
        apartment skyscraper warehouse garage shed cabin cottage hut bunker stadium tower""".split(),
        "building",
    ),
    **{f"{w} building": "building" for w in "apartment office school church farm mission".split()},
    "coffee shop": "building",
    "shopping center": "building",
    "shopping mall": "building",
    "mall": "building",
    "bell tower": "building",
    "church tower": "building",
    # road surface
    **dict.fromkeys("road street highway freeway lane avenue intersection roundabout overpass".split(), "road"),
    **{f"{w} road": "road" for w in "country dirt paved main side".split()},
    "city street": "road",
    "street intersection": "road",
    "parking lot": "road",
    **dict.fromkeys("sidewalk pavement footpath walkway crosswalk".split(), "sidewalk"),
    # lights and signals
    **dict.fromkeys("streetlight streetlamp lamppost lamp".split(), "street light"),
    **{k: "street light" for k in ("street light", "street lamp", "lamp post", "light pole", "lamp pole")},
    **{k: "traffic light" for k in ("traffic light", "traffic signal", "stop light", "stoplight", "signal light")},
    **dict.fromkeys("headlight headlamp".split(), "headlight"),
    "car headlight": "headlight",
    "tail light": "headlight",
    "brake light": "headlight",
    "taillight": "headlight",
    # signs, poles, barriers
    **{
        k: "sign"
        for k in (
            "sign",
            "signboard",
            "billboard",
            "stop sign",
            "street sign",
            "road sign",
            "traffic sign",
            "warning sign",
            "crossing sign",
            "way sign",
            "entry sign",
        )
    },
    **{k: "pole" for k in ("pole", "power pole", "utility pole", "telephone pole", "flag pole", "post", "power line")},
    **dict.fromkeys("fence railing barrier guardrail".split(), "fence"),
    **{k: "fence" for k in ("wire fence", "link fence", "chain fence")},
    "traffic cone": "cone",
    "cone": "cone",
    "bollard": "cone",
    # landscape
    **dict.fromkeys("mountain hill hillside".split(), "mountain"),
    **dict.fromkeys("field meadow grass lawn".split(), "field"),
    **dict.fromkeys("forest woods wood".split(), "forest"),
    "sky": "sky",
    "cloud": "sky",
    **dict.fromkeys("river lake pond sea ocean water harbor".split(), "water"),
}


@dataclass
class Vocabulary:
    """K label classes, the synonym map onto them, and each class's positive ratio."""

    classes: list[str]
    synonyms: dict[str, str] = field(default_factory=dict)
    positive_ratio: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.classes:
            raise EGMTError("a vocabulary needs at least one class")
        if len(set(self.classes)) != len(self.classes):
            raise EGMTError(f"vocabulary has repeated classes: {self.classes}")
        if self.positive_ratio and len(self.positive_ratio) != len(self.classes):
            raise EGMTError(f"vocabulary: {len(self.positive_ratio)} positive ratios for {len(self.classes)} classes")
        # Lookup keys are normalised so that "Street-Lights" finds "street light".
        self._syn = {entity_key(k): v for k, v in self.synonyms.items()}
        self._index = {c: i for i, c in enumerate(self.classes)}

    # -- mapping -----------------------------------------------------------------
    def canonical_form(self, entity: str) -> str:
        """``entity`` through the synonym map (whole phrase, then its last word), or normalised.

        "Pedestrians" -> "person"; "white minivan" -> "car"; "flagpole" -> "flagpole".
        The last-word fallback applies only to words in the map, so a compound the map does
        not list ("traffic cone") is never shortened to a class of its head.
        """
        n = normalize_entity(entity)
        if not n:
            return ""
        hit = self._syn.get(entity_key(n))
        if hit is not None:
            return hit
        if " " in n:
            hit = self._syn.get(entity_key(n.rsplit(" ", 1)[1]))
            if hit is not None:
                return hit
        return n

    def canonical(self, entity: str) -> str | None:
        """The class ``entity`` belongs to, or None if it maps to no class."""
        c = self.canonical_form(entity)
        return c if c in self._index else None

    def labels(self, entities: Sequence[str]) -> list[int]:
        """Multi-hot label (0/1 ints, ``len == len(classes)``) of a pair's entity list."""
        y = [0] * len(self.classes)
        for e in entities:
            c = self.canonical(e)
            if c is not None:
                y[self._index[c]] = 1
        return y

    # -- building ----------------------------------------------------------------
    @classmethod
    def build(
        cls, entity_lists: Sequence[Sequence[str]], num_classes: int = 9, synonyms: Mapping[str, str] | None = None
    ) -> Vocabulary:
        """Classes = the ``num_classes`` canonical entities found in the most pairs.

        ``entity_lists``: one list per training pair. ``synonyms``: the map to use
        (default :data:`DEFAULT_SYNONYMS`). Ties are broken alphabetically so the result is
        reproducible. :class:`EGMTError` if fewer distinct canonical entities than classes.
        """
        syn = dict(DEFAULT_SYNONYMS if synonyms is None else synonyms)
        probe = cls(classes=["_"], synonyms=syn)
        counts: Counter[str] = Counter()
        for ents in entity_lists:
            counts.update({c for c in (probe.canonical_form(e) for e in ents) if c})
        if num_classes < 1:
            raise EGMTError(f"num_classes must be >= 1, got {num_classes}")
        if len(counts) < num_classes:
            raise EGMTError(
                f"only {len(counts)} distinct entities in {len(entity_lists)} pairs, cannot make {num_classes} classes"
            )
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        classes = [c for c, _ in ranked[:num_classes]]
        vocab = cls(classes=classes, synonyms=syn)
        vocab.positive_ratio = vocab.class_frequency(entity_lists)
        return vocab

    def class_frequency(self, entity_lists: Sequence[Sequence[str]]) -> list[float]:
        """Share of the pairs in ``entity_lists`` whose label is 1, per class."""
        if not entity_lists:
            return [0.0] * len(self.classes)
        totals = [0] * len(self.classes)
        for ents in entity_lists:
            for k, v in enumerate(self.labels(ents)):
                totals[k] += v
        return [round(t / len(entity_lists), 6) for t in totals]

    # -- files -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"classes": list(self.classes), "synonyms": dict(self.synonyms), "positive_ratio": list(self.positive_ratio)}

    def save(self, path: str | os.PathLike) -> None:
        """Write ``vocabulary.json`` atomically (indented: people read and edit it)."""
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read ``vocabulary.json``; :class:`EGMTError` naming the file on any problem."""
        path = Path(path)
        d = read_json(path, "vocabulary file")
        if not isinstance(d, dict) or "classes" not in d:
            raise EGMTError(f"{path}: not a vocabulary file (no 'classes')")
        classes, syn, ratio = d["classes"], d.get("synonyms", {}), d.get("positive_ratio", [])
        if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
            raise EGMTError(f"{path}: 'classes' must be a list of non-empty strings")
        if not isinstance(syn, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in syn.items()):
            raise EGMTError(f"{path}: 'synonyms' must map strings to strings")
        if not isinstance(ratio, list) or not all(isinstance(r, (int, float)) and 0 <= r <= 1 for r in ratio):
            raise EGMTError(f"{path}: 'positive_ratio' must be a list of numbers in [0, 1]")
        try:
            return cls(classes=classes, synonyms=syn, positive_ratio=[float(r) for r in ratio])
        except EGMTError as e:
            raise EGMTError(f"{path}: {e}") from None


def load_synonyms(path: str | os.PathLike, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A JSON ``{word: class}`` file on top of ``base`` (default :data:`DEFAULT_SYNONYMS`).

    The file's entries add to and override the base; map a word to ``""`` to remove it.
    """
    path = Path(path)
    d = read_json(path, "synonyms file")
    if not isinstance(d, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in d.items()):
        raise EGMTError(f"{path}: synonyms must be a JSON object mapping strings to strings")
    out = dict(DEFAULT_SYNONYMS if base is None else base)
    for k, v in d.items():
        k = normalize_entity(k)
        if v:
            out[k] = normalize_entity(v)
        else:
            out.pop(k, None)
    return out
