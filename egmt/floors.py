"""The floors of the selection rule: what a validation must meet to become the best checkpoint.

Read by training's validation (:mod:`egmt.train.validation`) and by the study tables
(:mod:`egmt.bench.study`) from the same summary columns, so the two cannot disagree. No torch:
the study's table is made without loading it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from egmt.config import TrainConfig


@dataclass(frozen=True)
class Floors:
    """What a validation must meet to become the best checkpoint (``train.val_*``; None: no such
    floor), read from its summary columns (:meth:`Validator.summarize`'s, or a ``validation.csv``
    row's). NaN: undefined (no warm targets, no boxes), not held against a validation."""

    min_retention: float | None = None  # min_source_retention: warm targets kept on every source
    max_seam: float | None = None  # max_source_seam: no patch mosaic on any source
    min_person_ir: float | None = None  # person_ir: IR correlation inside the person boxes
    max_halo: float | None = None  # person_halo: grey levels the visible image is darkened around them
    min_ssim_min: float | None = None  # SSIM_min: the less kept source's SSIM (balance)
    person_floor: Literal["pooled", "each_source"] = "pooled"  # where the people's floor and ceiling are read

    @classmethod
    def from_config(cls, train: TrainConfig) -> Floors:
        return cls(
            train.val_min_retention,
            train.val_max_seam,
            train.val_min_person_ir,
            train.val_max_person_halo,
            train.val_min_ssim_min,
            train.val_person_floor,
        )

    def met_by(self, row: Mapping[str, object]) -> bool:
        """Whether the summary ``row`` meets every floor (a missing column counts as undefined)."""
        each = self.person_floor == "each_source"
        person, halo = ("min_source_person_ir", "max_source_person_halo") if each else ("person_ir", "person_halo")
        checks = (
            ("min_source_retention", self.min_retention, True),
            ("max_source_seam", self.max_seam, False),
            (person, self.min_person_ir, True),
            (halo, self.max_halo, False),
            ("SSIM_min", self.min_ssim_min, True),
        )
        return all(_meets(log_number(row.get(column)), bound, above) for column, bound, above in checks)


def log_number(value: object) -> float:
    """A summary cell as a float; an empty cell (None, "", as older runs' logs leave) is NaN."""
    return math.nan if value is None or value == "" else float(value)  # type: ignore[arg-type]


def _meets(value: float, bound: float | None, above: bool) -> bool:
    """``value`` at or ``above`` (else at or below) ``bound``; None: no bound; NaN: undefined, met."""
    return bound is None or math.isnan(value) or (value >= bound if above else value <= bound)
