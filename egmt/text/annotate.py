"""The whole text pipeline over one dataset folder: captions -> entities -> labels and features.

:func:`annotate_dataset` writes, into an output folder shared by several datasets,

* ``DATASET.jsonl``: one :class:`~egmt.text.annotations.PairAnnotation` per pair;
* ``vocabulary.json``: the label vocabulary (built on a training split, or given);
* ``entity_bank.safetensors``: the features of every entity seen so far (added to, never
  re-encoded; the encoder is not even loaded when no entity is new).

Problems are never silent: pairs without captions are an error (or, when allowed, skipped
with a warning each), an empty caption or a pair without entities is a per-pair warning,
and a vocabulary or bank that disagrees with what is already in the folder is an error.
"""

from __future__ import annotations

import logging
import os
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from egmt.config import TextConfig
from egmt.errors import EGMTError
from egmt.text.annotations import PairAnnotation, write_annotations
from egmt.text.bank import EntityBank
from egmt.data.pairs import Pair, match_folders, read_split
from egmt.text.captions import PairCaptions, load_captioner, write_caption_file
from egmt.files import BANK_FILE, VOCABULARY_FILE
from egmt.text.entities import load_extractor, merge_entities
from egmt.text.labels import Vocabulary, load_synonyms

log = logging.getLogger("egmt.text")


def list_pairs(root: str | os.PathLike) -> list[Pair]:
    """The pairs of a dataset folder ``ROOT/{ir,vi}/STEM.ext``; a file without its partner is skipped with a warning."""
    root = Path(root)
    pairs, problems = match_folders(root / "ir", root / "vi")
    for problem in problems:
        log.warning("skipped: %s", problem)
    if not pairs:
        raise EGMTError(f"{root}: no image pairs (no stem present in both ir/ and vi/)")
    return pairs


@dataclass
class AnnotationResult:
    """What :func:`annotate_dataset` made and where it wrote it."""

    dataset: str
    annotations: list[PairAnnotation]
    vocabulary: Vocabulary
    bank: EntityBank
    annotations_path: Path
    vocabulary_path: Path
    bank_path: Path
    new_entities: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def annotate_dataset(
    root: str | os.PathLike,
    captions_file: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    cfg: TextConfig | None = None,
    vocab: Vocabulary | str | os.PathLike | None = None,
    build_vocab: bool = False,
    split: str | os.PathLike | None = None,
    dataset: str | None = None,
    allow_missing: bool = False,
    save_captions: str | os.PathLike | None = None,
    progress: bool = True,
    captioner=None,
    extractor=None,
    encoder: object | Callable[[], object] | None = None,
) -> AnnotationResult:
    """Annotate every pair of the dataset folder ``root`` and write the files into ``out_dir``.

    Vocabulary: ``vocab`` (a :class:`Vocabulary` or its file), or ``build_vocab=True`` to build
    one on the pairs of ``split`` (all pairs if None) with ``cfg.synonyms``, or neither to
    reuse ``out_dir/vocabulary.json``. ``captioner``/``extractor``/``encoder`` override the
    ones ``cfg`` names (for tests and callers that hold models already; ``encoder`` may be a
    zero-argument factory, called only if some entity is new). Annotations cover every pair;
    the split only chooses the pairs the vocabulary is built on.
    """
    from tqdm.auto import tqdm

    cfg = cfg or TextConfig()
    root, out_dir = Path(root), Path(out_dir)
    name = dataset or root.resolve().name
    warnings: list[str] = []

    def warn(msg: str) -> None:
        warnings.append(msg)
        log.warning(msg)

    if build_vocab and vocab is not None:
        raise EGMTError("give either a vocabulary file or --build-vocab, not both")
    if split is not None and not build_vocab:
        raise EGMTError("--split chooses the pairs a vocabulary is built on: it needs --build-vocab")
    if cfg.synonyms and not build_vocab:
        raise EGMTError("--synonyms applies when building a vocabulary (--build-vocab); a vocabulary file carries its own")
    synonyms = load_synonyms(cfg.synonyms) if cfg.synonyms else None  # read now: a bad file fails before any model

    # Settle the vocabulary and the bank first: disagreements fail before any model runs.
    vocab_path, bank_path = out_dir / VOCABULARY_FILE, out_dir / BANK_FILE
    existing_vocab = Vocabulary.load(vocab_path) if vocab_path.exists() else None
    if isinstance(vocab, (str, os.PathLike)):
        vocab = Vocabulary.load(vocab)
    if vocab is None and not build_vocab:
        if existing_vocab is None:
            raise EGMTError(f"no vocabulary: pass --vocab FILE or --build-vocab (and {vocab_path} does not exist)")
        vocab = existing_vocab
        log.info("using the vocabulary in %s", vocab_path)
    if vocab is not None:
        _check_same_vocabulary(existing_vocab, vocab, vocab_path)
    bank = EntityBank.load(bank_path) if bank_path.exists() else None
    if bank is not None and bank.encoder != cfg.encoder:
        raise EGMTError(f"{bank_path}: holds {bank.encoder} features, not {cfg.encoder}; use another output folder")

    pairs = list_pairs(root)
    split_names: list[str] | None = None
    if build_vocab and split is not None:
        split_path = Path(split) if Path(split).is_absolute() or Path(split).exists() else Path(root) / split
        split_names = read_split(split_path)
        if not split_names:
            raise EGMTError(f"{split_path}: split file lists no pairs")
        unknown = sorted(set(split_names) - {p.name for p in pairs})
        if unknown:
            raise EGMTError(f"{split}: {len(unknown)} stem(s) are not pairs of {root} (e.g. {unknown[0]!r})")

    # 1. captions
    if captioner is None:
        cap_path = captions_file if cfg.captioner == "file" else cfg.captioner_path
        captioner = load_captioner(cfg.captioner, cap_path, dataset=name, device=cfg.device, batch_size=cfg.batch_size)
    captions = captioner.caption_pairs(pairs, progress=progress)
    missing = [p.name for p in pairs if p.name not in captions]
    if missing:
        source = captions_file if cfg.captioner == "file" else cfg.captioner
        if not allow_missing:
            raise EGMTError(
                f"{source}: no captions for {len(missing)} of {len(pairs)} pairs of {root} (e.g. {missing[0]!r}); "
                "add them, or pass --allow-missing to skip those pairs"
            )
        for skipped in missing:
            warn(f"{name}/{skipped}: no captions, pair skipped (no annotation written)")
        pairs = [p for p in pairs if p.name in captions]
        if split_names is not None:
            split_names = [s for s in split_names if s in captions]
    if save_captions is not None:
        write_caption_file(save_captions, {p.name: captions[p.name] for p in pairs}, name)
    for p in pairs:
        c = captions[p.name]
        for side, text in (("IR", c.ir), ("VIS", c.vi)):
            if not text.strip():
                warn(f"{name}/{p.name}: empty {side} caption, its entities come from the other caption only")

    # 2. entities
    if extractor is None:
        extractor = load_extractor(cfg.extractor, cfg.extractor_path, device=cfg.device, batch_size=cfg.batch_size)
    texts = [captions[p.name].ir for p in pairs] + [captions[p.name].vi for p in pairs]
    found: list[list[str]] = [[] for _ in texts]
    todo = [i for i, t in enumerate(texts) if t.strip()]
    chunk = max(cfg.batch_size, 32)
    for s in tqdm(range(0, len(todo), chunk), desc=f"{name}: entities ({extractor.name})", unit="batch", disable=not progress):
        idx = todo[s : s + chunk]
        for i, ents in zip(idx, extractor.extract([texts[i] for i in idx])):
            found[i] = ents
    n = len(pairs)
    ir_ents, vi_ents = found[:n], found[n:]
    merged = [merge_entities(ir_ents[i], vi_ents[i], cfg.max_entities) for i in range(n)]
    for p, m in zip(pairs, merged):
        if not m:
            warn(f"{name}/{p.name}: no entities in either caption; the pair gets no entity features and an all-zero label")

    # 3. vocabulary
    if build_vocab:
        chosen = set(split_names) if split_names is not None else None
        train = [m for p, m in zip(pairs, merged) if chosen is None or p.name in chosen]
        vocab = Vocabulary.build(train, num_classes=cfg.num_classes, synonyms=synonyms)
        _check_same_vocabulary(existing_vocab, vocab, vocab_path)
    assert vocab is not None

    # 4. entity features: only entities the bank lacks are encoded
    if bank is None:
        enc = _resolve_encoder(encoder, cfg)
        bank = EntityBank.for_encoder(enc)
    else:
        enc = None
    all_entities = [e for m in merged for e in m]
    new = bank.missing(all_entities)
    if new:
        enc = enc or _resolve_encoder(encoder, cfg)
        bank.check_encoder(enc)
        step = max(cfg.batch_size, 64)
        for s in tqdm(range(0, len(new), step), desc=f"{name}: entity features ({enc.name})", unit="batch", disable=not progress):
            bank.add(new[s : s + step], enc)

    # 5. labels and files
    annotations = [
        PairAnnotation(
            name=p.name,
            ir_caption=captions[p.name].ir,
            vi_caption=captions[p.name].vi,
            ir_entities=ir_ents[i],
            vi_entities=vi_ents[i],
            entities=merged[i],
            labels=vocab.labels(merged[i]),
        )
        for i, p in enumerate(pairs)
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    bank.save(bank_path)
    if existing_vocab is None or existing_vocab.positive_ratio != vocab.positive_ratio:
        vocab.save(vocab_path)
    ann_path = out_dir / f"{name}.jsonl"
    write_annotations(ann_path, annotations)
    return AnnotationResult(name, annotations, vocab, bank, ann_path, vocab_path, bank_path, new, warnings)


def _check_same_vocabulary(existing: Vocabulary | None, vocab: Vocabulary, path: Path) -> None:
    """An output folder keeps one vocabulary: its annotation files were labelled with it."""
    if existing is not None and (existing.classes != vocab.classes or existing.synonyms != vocab.synonyms):
        raise EGMTError(
            f"{path}: already holds a different vocabulary (classes {existing.classes}); the annotation files "
            f"there were labelled with it. Use another output folder, or pass --vocab {path}"
        )


def _resolve_encoder(encoder, cfg: TextConfig):
    from egmt.text.encoders import load_encoder

    if encoder is None:
        return load_encoder(cfg.encoder, cfg.encoder_path, device=cfg.device)
    if callable(encoder) and not hasattr(encoder, "encode"):
        return encoder()
    return encoder


# ------------------------------------------------------------------------------ summaries


def summarize(annotations: Sequence[PairAnnotation], vocab: Vocabulary) -> dict:
    """Entities per pair, label frequency per class and entity sources, for reports."""
    counts = [len(a.entities) for a in annotations]
    per_class = [sum(a.labels[k] for a in annotations) for k in range(len(vocab.classes))]
    sources = Counter(s for a in annotations for s in a.sources())
    entity_freq = Counter(e for a in annotations for e in a.entities)
    return {
        "pairs": len(annotations),
        "entities_per_pair": dict(sorted(Counter(counts).items())),
        "mean_entities": round(statistics.fmean(counts), 2) if counts else 0.0,
        "label_count": dict(zip(vocab.classes, per_class)),
        "no_label_pairs": sum(1 for a in annotations if not any(a.labels)),
        "sources": dict(sources),
        "top_entities": entity_freq.most_common(15),
    }


def format_summary(dataset: str, annotations: Sequence[PairAnnotation], vocab: Vocabulary) -> str:
    """A short Markdown report: entities per pair and label frequency per class."""
    s = summarize(annotations, vocab)
    n = max(s["pairs"], 1)
    lines = [f"### {dataset}: {s['pairs']} pairs, {s['mean_entities']} entities per pair on average", ""]
    lines += ["| entities per pair | " + " | ".join(str(k) for k in s["entities_per_pair"]) + " |"]
    lines += ["|---|" + "---|" * len(s["entities_per_pair"])]
    lines += ["| pairs | " + " | ".join(str(v) for v in s["entities_per_pair"].values()) + " |", ""]
    lines += ["| class | pairs | share |", "|---|---|---|"]
    lines += [f"| {c} | {k} | {k / n:.2f} |" for c, k in s["label_count"].items()]
    lines += [
        "",
        f"pairs with no class entity (all-zero label): {s['no_label_pairs']}; "
        f"entity sources: {', '.join(f'{k} {v}' for k, v in sorted(s['sources'].items()))}",
    ]
    return "\n".join(lines)


__all__ = [
    "annotate_dataset",
    "list_pairs",
    "summarize",
    "format_summary",
    "AnnotationResult",
    "PairCaptions",
    "BANK_FILE",
    "VOCABULARY_FILE",
]
