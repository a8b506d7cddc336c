"""The EGMT paper's published numbers, printed beside ours for reference.

Source: "Entity-Guided Multi-Task Learning for Infrared and Visible Image
Fusion" (W. Shao, H. Liu, Y. Ma, R. Wang). The numbers are copied by hand
from the "Ours" rows of Tables I-IV and VII and from the three rows of Table V; they are
the authors' measurements (their checkpoint, their metric code, an RTX 4090), not ours.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The paper's fusion-metric columns (Tables I-IV), in its order.
PAPER_FUSION_COLUMNS = ("PC", "SSIM", "MI", "Qabf", "PSNR", "FMI_w", "Nabf", "NCIE")


@dataclass(frozen=True)
class PaperFusionRow:
    """One published EGMT row: where it is printed, over how many pairs, and its values."""

    table: str  # "Table I" ...
    dataset: str  # the paper's dataset name
    pairs: int  # test pairs the paper scored (Sec. IV-A-1)
    values: dict[str, float]


def _row(values: tuple[float, ...]) -> dict[str, float]:
    return dict(zip(PAPER_FUSION_COLUMNS, values, strict=True))


#: "Ours" rows of Tables I (TNO), II (RoadScene), III (M3FD, not bundled) and IV (MSRS).
#: Pair counts from Sec. IV-A-1: TNO 25, RoadScene all 221 pairs (we score its 50-pair
#: test split), M3FD 300, MSRS test set 361 (9 of them are bundled).
PAPER_FUSION: dict[str, PaperFusionRow] = {
    "tno": PaperFusionRow("Table I", "TNO", 25, _row((0.40241, 0.72085, 4.86354, 0.56391, 16.46613, 0.45979, 0.00595, 0.81674))),
    "roadscene": PaperFusionRow(
        "Table II", "RoadScene", 221, _row((0.43860, 0.70555, 5.42253, 0.52848, 16.13816, 0.44724, 0.00440, 0.81806))
    ),
    "m3fd": PaperFusionRow(
        "Table III", "M3FD", 300, _row((0.42021, 0.71954, 5.56808, 0.55580, 16.47044, 0.46910, 0.00288, 0.82122))
    ),
    "msrs": PaperFusionRow(
        "Table IV", "MSRS", 361, _row((0.54329, 0.71117, 5.73039, 0.69927, 20.75212, 0.46649, 0.00125, 0.82777))
    ),
}

#: Table V: multi-label classification on the MSRS test set, by input modality
#: (the paper prints the Jaccard index column as "J1").
PAPER_CLASSIFICATION: dict[str, dict[str, float]] = {
    "Only_IR": {"HL": 0.229, "RL": 0.187, "mAP": 0.513, "AUC": 0.674, "JI": 0.432, "F1": 0.603},
    "Only_VIS": {"HL": 0.207, "RL": 0.165, "mAP": 0.612, "AUC": 0.738, "JI": 0.480, "F1": 0.649},
    "Fused (IR+VIS)": {"HL": 0.184, "RL": 0.136, "mAP": 0.779, "AUC": 0.857, "JI": 0.554, "F1": 0.713},
}

#: Table VII, "Ours": FLOPs (G, input size not stated), parameters (M), and inference time
#: (s per pair, classification branch off) per dataset on an RTX 4090.
PAPER_EFFICIENCY = {
    "flops_g": 111.9,
    "params_m": 53.62,
    "seconds": {"tno": 0.181, "roadscene": 0.071, "m3fd": 1.483, "msrs": 0.161},
}
