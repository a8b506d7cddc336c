"""Captions -> entities -> entity features and pseudo-labels, for one dataset folder.

Writes OUT/DATASET.jsonl (a line per pair: captions, IR/VIS/merged entities, multi-hot
labels), OUT/vocabulary.json and OUT/entity_bank.safetensors. Several datasets share one
OUT: build the vocabulary on a training split first, then annotate the others with it.

examples:
  egmt annotate ../shared/data/roadscene --captions ../shared/data/captions/roadscene.jsonl \\
      --build-vocab --split train.txt -o annotations
  egmt annotate ../shared/data/tno --captions ../shared/data/captions/tno.jsonl \\
      --vocab annotations/vocabulary.json -o annotations
  egmt annotate DATA --captioner blip2 --captioner-path BLIP2_DIR --entities factual \\
      --extractor-path FACTUAL_DIR --encoder clip --encoder-path CLIP_DIR --build-vocab -o OUT

Models are read from local folders (or the Hugging Face cache); no hub is contacted.
"""

from __future__ import annotations

import argparse

HELP = "caption, extract entities, encode them and make pseudo-labels for a dataset"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", help="dataset folder with ir/ and vi/ images of the same stems")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="output folder (shared by several datasets)")
    p.add_argument("--captions", metavar="FILE", help="JSON Lines captions {name, ir, vi} (captioner 'file')")
    p.add_argument("--captioner", choices=["file", "blip2"], default="file", help="where captions come from (default: file)")
    p.add_argument(
        "--captioner-path", metavar="DIR", help="BLIP-2 model folder or cached hub id (default Salesforce/blip2-opt-2.7b)"
    )
    p.add_argument("--save-captions", metavar="FILE", help="also write the captions used as JSON Lines (e.g. BLIP-2's)")
    p.add_argument(
        "--entities",
        choices=["spacy", "factual"],
        default="spacy",
        help="entity extractor: spacy (offline default) or factual (the paper's Flan-T5 scene-graph parser)",
    )
    p.add_argument("--extractor-path", metavar="DIR", help="FACTUAL model folder, or a spaCy pipeline name/folder")
    p.add_argument(
        "--encoder",
        choices=["minilm", "clip"],
        default="minilm",
        help="text encoder: minilm (384-d, offline default) or clip (the paper's ViT-L/14, 768-d)",
    )
    p.add_argument("--encoder-path", metavar="DIR", help="encoder model folder or cached hub id")
    v = p.add_mutually_exclusive_group()
    v.add_argument("--vocab", metavar="FILE", help="use this label vocabulary (default: OUT/vocabulary.json if present)")
    v.add_argument("--build-vocab", action="store_true", help="build the label vocabulary from this dataset's pairs")
    p.add_argument("--split", metavar="FILE", help="with --build-vocab: stems to build it on (relative to ROOT), e.g. train.txt")
    p.add_argument("--synonyms", metavar="FILE", help="with --build-vocab: JSON {word: class} over the default synonym map")
    p.add_argument("--num-classes", type=int, default=9, help="label classes to build (paper: 9)")
    p.add_argument("--max-entities", type=int, default=8, help="entities kept per pair (paper: 2-8)")
    p.add_argument("--name", help="dataset name for OUT/NAME.jsonl (default: the folder's name)")
    p.add_argument("--allow-missing", action="store_true", help="skip pairs without captions (a warning each) instead of failing")
    p.add_argument("--device", default="cpu", help="device for the models: cpu, cuda, auto (default: cpu)")
    p.add_argument("--batch-size", type=int, default=16, help="captions or images per model call")
    p.add_argument("--examples", type=int, default=3, metavar="N", help="print N example pairs at the end (default 3)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")


def run(args: argparse.Namespace) -> int:
    import sys

    from egmt.config import TextConfig
    from egmt.errors import EGMTError
    from egmt.text.annotate import annotate_dataset, format_summary

    if args.captioner == "file" and not args.captions:
        raise EGMTError("--captions FILE is needed with the file captioner (or use --captioner blip2)")
    for flag in ("num_classes", "max_entities", "batch_size"):
        if getattr(args, flag) < (0 if flag == "max_entities" else 1):
            raise EGMTError(f"--{flag.replace('_', '-')} must be positive")
    cfg = TextConfig(
        captioner=args.captioner,
        captioner_path=args.captioner_path,
        extractor=args.entities,
        extractor_path=args.extractor_path,
        encoder=args.encoder,
        encoder_path=args.encoder_path,
        max_entities=args.max_entities,
        num_classes=args.num_classes,
        synonyms=args.synonyms,
        device=args.device,
        batch_size=args.batch_size,
    )
    result = annotate_dataset(
        args.root,
        args.captions,
        args.out,
        cfg,
        vocab=args.vocab,
        build_vocab=args.build_vocab,
        split=args.split,
        dataset=args.name,
        allow_missing=args.allow_missing,
        save_captions=args.save_captions,
        progress=not args.quiet,
    )
    if not args.quiet:
        print(format_summary(result.dataset, result.annotations, result.vocabulary))
        print()
        print(f"classes: {', '.join(result.vocabulary.classes)}")
        for a in result.annotations[: max(args.examples, 0)]:
            print(f"- {a.name}: IR {a.ir_caption!r} / VIS {a.vi_caption!r}")
            tagged = ", ".join(f"{e} [{s}]" for e, s in zip(a.entities, a.sources()))
            on = [c for c, y in zip(result.vocabulary.classes, a.labels) if y]
            print(f"    entities: {tagged}; labels: {', '.join(on) or '(none)'}")
        print()
    print(
        f"wrote {result.annotations_path} ({len(result.annotations)} pairs), {result.vocabulary_path}, "
        f"{result.bank_path} ({len(result.bank)} entities, {len(result.new_entities)} new)"
    )
    if result.warnings:
        print(f"{len(result.warnings)} warning(s), see above", file=sys.stderr)
    return 0
