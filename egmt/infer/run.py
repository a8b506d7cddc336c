"""``egmt fuse`` as a job: fuse one pair or two folders, write PNGs and which entities were used.

A pair that fails (unreadable file, size mismatch, unknown entity...) is reported by name and
skipped; the rest of the folder is still fused, and nothing already written is touched.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from egmt.baselines import get_baseline
from egmt.data.color import merge_luma
from egmt.data.io import IMAGE_EXTENSIONS, read_image, write_image
from egmt.data.pairs import MIN_FUSION_SIZE, Pair, match_folders, pair_from_arrays
from egmt.errors import EGMTError
from egmt.fileio import write_text_atomic
from egmt.files import ENTITY_TABLE_FILE
from egmt.infer.entities import EntityResolver, parse_entity_list
from egmt.infer.fuser import EGMTFuser, FusionResult

log = logging.getLogger(__name__)

#: Where a pair's entities come from: ``name -> (entities or None for caption-free, source)``,
#: as :class:`EntityResolver` (or a benchmark condition, :class:`egmt.bench.entity_effect.ConditionEntities`) answers.
Resolver = Callable[[str], tuple[list[str] | None, str]]

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "pretrained" / "egmt-roadscene"


def pair_output(ir: Path, out: Path) -> Path:
    """Where ``egmt fuse`` writes one pair: ``out`` if it has an image extension, else ``out/STEM.png``."""
    return out if out.suffix.lower() in IMAGE_EXTENSIONS else out / f"{ir.stem}.png"


@dataclass
class FuseReport:
    """What a fuse job did: outputs written, failures (one line each), seconds per pair."""

    written: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    unit: str = "pair"  # or "clip"

    def summary(self) -> str:
        mean = f", {np.mean(self.seconds):.3f} s per {self.unit}" if self.seconds else ""
        text = f"fused {len(self.written)} {self.unit}(s){mean}"
        if self.failures:
            text += f"; {len(self.failures)} failed"
        return text


class FuseJob:
    """One fusion method (EGMT with entity sources, or a baseline) applied pair by pair."""

    def __init__(
        self,
        method: str = "egmt",
        fuser: EGMTFuser | None = None,
        resolver: Resolver | None = None,
        threshold: float = 0.5,
        progress: bool = True,
    ):
        self.method = method
        self.fuser = fuser
        self.resolver: Resolver = resolver or EntityResolver()
        self.threshold = threshold
        self.baseline = None if method == "egmt" else get_baseline(method)
        self.last_result: FusionResult | None = None
        self.progress = progress  # progress bars on stderr over pairs and frames (the fuser's own: tiles)

    @classmethod
    def from_args(cls, args) -> FuseJob:
        guidance = getattr(args, "guidance", None)
        progress = not getattr(args, "no_progress", False)
        if args.method != "egmt":
            if guidance is not None:
                raise EGMTError(f"--guidance steers EGMT's entities: --method {args.method} has none")
            given = [f for f in ("entities", "captions", "annotations") if getattr(args, f, None) is not None]
            if given:
                log.warning("--%s: not read by --method %s (only egmt reads entities)", ", --".join(given), args.method)
            return cls(args.method, progress=progress)
        checkpoint = Path(args.checkpoint) if args.checkpoint else DEFAULT_CHECKPOINT
        backend = getattr(args, "backend", "torch")
        if guidance is not None and backend != "torch":
            raise EGMTError("--guidance needs --backend torch (an exported graph keeps the guidance it was exported with)")
        if guidance is not None and guidance < 0:
            raise EGMTError(f"--guidance {guidance}: expected 0 or more")
        fuser = EGMTFuser.from_pretrained(checkpoint, device=args.device, backend=backend, tile_size=args.tile, progress=progress)
        if guidance is not None:
            fuser.model.config.entity_guidance = guidance
        if getattr(args, "compile", False):
            fuser.compile()
        resolver = EntityResolver(
            annotations=args.annotations,
            captions=args.captions,
            typed=parse_entity_list(args.entities) if args.entities is not None else None,
            extractor=args.extractor,
            tokens=fuser.model.config.text_tokens,
            warn_missing=True,
        )
        return cls("egmt", fuser, resolver, args.threshold, progress=progress)

    def fuse_pair(self, pair: Pair) -> FusionResult:
        """Fuse one pair of files; raises EGMTError for bad input."""
        if self.baseline is None:
            assert self.fuser is not None, "method egmt needs a fuser"
            entities, source = self.resolver(pair.name)
            result = self.fuser(pair.ir, pair.vi, entities=entities, threshold=self.threshold)
            if entities is not None:
                result.entity_source = source
            return result
        return self.fuse_arrays(read_image(pair.ir), read_image(pair.vi), labels=(pair.ir, pair.vi))

    def fuse_arrays(
        self,
        ir: np.ndarray,
        vi: np.ndarray,
        entities: list[str] | None = None,
        labels: tuple[object, object] = ("infrared", "visible"),
    ) -> FusionResult:
        """Fuse one pair of arrays (as :func:`read_image` returns them; a video's frames);
        ``entities`` as for :class:`EGMTFuser` (None: caption-free), ignored by baselines."""
        if self.baseline is None:
            assert self.fuser is not None, "method egmt needs a fuser"
            return self.fuser(ir, vi, entities=entities, threshold=self.threshold)
        loaded = pair_from_arrays("pair", ir, vi, *labels, MIN_FUSION_SIZE)
        y = torch.from_numpy(self.baseline(loaded.ir[0].numpy(), loaded.vi[0].numpy()))[None, None]
        rgb = merge_luma(y, None if loaded.vi_cbcr is None else loaded.vi_cbcr[None])[0]
        image = rgb[0].numpy() if rgb.shape[0] == 1 else rgb.permute(1, 2, 0).numpy()
        return FusionResult(image, [], "none")

    def _run(self, pairs: list[Pair], out_for, report: FuseReport, table: Path | None) -> FuseReport:
        rows: list[dict] = []
        try:
            for pair in tqdm(pairs, desc=f"fuse ({self.method})", unit="pair", disable=not self.progress or len(pairs) < 2):
                t0 = time.perf_counter()
                try:
                    result = self.fuse_pair(pair)
                    if self.fuser is not None and self.fuser.device.type == "cuda":
                        torch.cuda.synchronize()
                    seconds = time.perf_counter() - t0
                    out = out_for(pair)
                    write_image(out, result.image)
                except EGMTError as e:
                    report.failures.append(f"{pair.name}: {e}")
                    continue
                self.last_result = result
                report.written.append(out)
                report.seconds.append(seconds)
                rows.append(
                    {
                        "name": pair.name,
                        "method": self.method,
                        "entity_source": result.entity_source,
                        "entities": "; ".join(result.entities),
                        "seconds": f"{seconds:.4f}",
                    }
                )
        finally:  # interrupted too: the table of the pairs already written is kept with them
            if table is not None and rows:
                buf = io.StringIO(newline="")
                w = csv.DictWriter(buf, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
                write_text_atomic(table, buf.getvalue())
        return report

    def run_pair(self, ir: Path, vi: Path, out: Path) -> FuseReport:
        """Fuse two files into ``out`` (a file if it has an image extension, else ``out/STEM.png``)."""
        target = pair_output(ir, out)
        report = self._run([Pair(ir.stem, ir, vi)], lambda p: target, FuseReport(), None)
        if report.written and self.method == "egmt":
            r = self.last_result
            assert r is not None  # set with each pair written
            log.info("%s: entities (%s): %s", target, r.entity_source, ", ".join(r.entities) or "(none)")
        return report

    def run_folders(self, ir_dir: Path, vi_dir: Path, out_dir: Path, split: str | None = None) -> FuseReport:
        """Fuse every pair of two folders into ``out_dir/STEM.png``, plus ``out_dir/entities.csv``."""
        pairs, problems = match_folders(ir_dir, vi_dir, split)  # out_dir is made with its first file
        report = FuseReport(failures=list(problems))
        return self._run(pairs, lambda p: out_dir / f"{p.name}.png", report, out_dir / ENTITY_TABLE_FILE)
