"""Write docs/metrics.md: the metric x profile table from the registries in
egmt.metrics.profiles, and a worked example scored by ``egmt evaluate`` under the three
profiles (a bundled TNO pair fused with the Laplacian-pyramid baseline).

    python docs/make_metrics_md.py            # rewrites docs/metrics.md

The prose (the differences, spelled out) is kept here beside the tables it explains.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from egmt.baselines import get_baseline  # noqa: E402
from egmt.bench.evaluate import evaluate  # noqa: E402
from egmt.data.io import read_image, write_image  # noqa: E402
from egmt.fileio import write_text_atomic  # noqa: E402
from egmt.metrics import PROFILES  # noqa: E402

PAIR = "07"  # samples/tno/{ir,vi}/07.png
#: Rows of the definition table that the toolboxes name differently.
SAME_ROW = {"VIFF": "VIF"}

INTRO = """# Metrics and metric profiles

Fusion papers print metrics with the same names and different definitions: MI in bits or
in nats, SSIM averaged over the two sources or summed, PSNR with 255 or max(F) as the peak,
SF and AG with different divisors. Most published tables come from three codebases, and
`egmt evaluate` reproduces each of them number for number as a **profile**:

| profile | reproduces | metrics |
|---|---|---|
{profiles}

```bash
egmt evaluate --ir DATA/ir --vi DATA/vi --fused mine=OUT --profile vifb -o scores-vifb
```

```python
from egmt.metrics import compute_fusion_metrics
compute_fusion_metrics(ir, vi, fused, profile="cddfuse")   # {{"EN": ..., "SD": ..., ...}}
```

`paper` is the default and the convention of the EGMT paper's tables. Keys are the
toolboxes' own column names, so check a table's profile before comparing numbers across
papers; the summary table `egmt evaluate` writes names its profile and each metric's unit.
Every value is tested against golden values computed with the original code (GNU Octave for
the MATLAB toolboxes, CDDFuse's pinned Python environment for its evaluator) on seven cases,
committed under `tests/data/reference/`: VIFB to 1e-6 relative, CDDFuse to 1e-9 (its float64
run) and 2e-6 (its float32 run, what its script prints); the `paper` profile to 1e-6 (FMI_edge
1e-3).

All profiles read the images as 8-bit grey values 0..255 (not [0, 1]), RGB through
MATLAB's `rgb2gray`, and compute in float64. A = infrared, B = visible, F = fused.
"""

DIFFERENCES = """## The differences, spelled out

Same name, different number (paper = the `paper` profile):

- **MI**: paper: I(F;A) + I(F;B) in **bits** over the exact 256×256 joint histograms.
  VIFB: the same sum in **nats**, after min–max stretching each image to 0..255
  (`round(255·(x − min)/(max − min))`), so it equals paper MI × ln 2 only when every image
  spans 0..255. CDDFuse: scikit-learn's `mutual_info_score`, in **nats**, no stretch
  (= paper MI × ln 2 exactly).
- **SSIM**: paper: the mean of SSIM(A,F) and SSIM(B,F), each Gaussian 11×11 (σ 1.5),
  'valid' map, L = 255 (VIFB's formula). VIFB: the **sum** of the same two (up to 2).
  CDDFuse: the **sum** of two scikit-image SSIMs with a 7×7 **uniform** window, sample
  covariance and the data range 2 that scikit-image ≤ 0.19 inferred for float images
  (C1 = 0.02², C2 = 0.06² on 0..255 data, so nearly no stabilisation).
- **PSNR**: paper: 10·log10(255² / ((MSE(F,A) + MSE(F,B))/2)) dB. VIFB: 20·log10(255/√M)
  with M = mean over the sources of √(Σ(X−F)²)/(HW): not the PSNR of any MSE, about 30 dB
  higher on 640×480 images. CDDFuse: the paper formula with **max(F)** as the peak.
- **SF**: paper and CDDFuse: each of the two mean squared differences over its own count.
  VIFB: both sums divided by H·W (slightly smaller).
- **AG**: paper and VIFB: Σ √((Gx² + Gy²)/2) over all H·W pixels divided by (H−1)(W−1) (a
  quirk of the MATLAB code). CDDFuse: the plain mean, smaller by (H−1)(W−1)/(HW).
- **Qabf**: one formula everywhere, including the quirk G = gF where gX == gF. VIFB
  multiplies the images by 255 first (its `255*im2double` of doubles), which only changes that
  quirk (≤ 3e-10 relative here).
- **VIF / VIFF**: CDDFuse's "VIFF" is the paper's VIF (pixel-domain multiscale VIF of
  Sheikh & Bovik, not Han et al.'s VIFF) computed with `scipy.signal.convolve2d(..., 'valid')`,
  which swaps image and window when the window is larger: on images under 41 pixels a side
  the coarse scales are not empty (0.248 instead of 0.186 on the 32×32 `saturation` case),
  and a source without local variance counts 1 instead of being undefined.
- **EN, SD, SCD, CC**: the same in every profile that has them.

Only in one profile: paper: PC, FMI_w, Nabf, NCIE, VIF (and the variants MI_tang,
PSNR_tang, SSIM_sum_vifb, Nabf_tang2023, FMI_pixel, FMI_dct, FMI_edge, by name); VIFB: CE
(cross-entropy, lower is better), EI (edge intensity), RMSE (VIFB's root-SSE / HW, lower is
better), Qcb (Chen–Blum), Qcv (Chen–Varshney, lower is better); CDDFuse: MSE.
"""


def _definition_table() -> str:
    names = list(PROFILES)
    rows: dict[str, dict[str, str]] = {}
    for pname, prof in PROFILES.items():
        for key, spec in prof.metrics.items():
            row = SAME_ROW.get(key, key)
            text = spec.description + (f" [{spec.unit}]" if spec.unit else "") + f" {spec.arrow}"
            rows.setdefault(row, {})[pname] = text if key == row else f"`{key}`: {text}"
    lines = ["| metric | " + " | ".join(f"`{n}`" for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for row, cells in rows.items():
        lines.append(f"| {row} | " + " | ".join(cells.get(n, "–") for n in names) + " |")
    return "\n".join(lines) + "\n"


def _worked_example(work: Path) -> str:
    src = REPO / "samples" / "tno"
    ir, vi = read_image(src / "ir" / f"{PAIR}.png"), read_image(src / "vi" / f"{PAIR}.png")
    ir, vi = (x if x.ndim == 2 else x[..., 0] for x in (ir, vi))
    (work / "lp").mkdir()
    write_image(work / "lp" / f"{PAIR}.png", get_baseline("laplacian_pyramid")(ir, vi))
    scores = {}
    for name in PROFILES:
        summary = evaluate(src / "ir", src / "vi", {"lp": work / "lp"}, work / name, profile=name, workers=1,
                           progress=False)
        scores[name] = summary.mean["lp"]
    rows: dict[str, dict[str, str]] = {}
    for pname, prof in PROFILES.items():
        for key in scores[pname]:
            spec = prof.metrics[key]
            unit = f" {spec.unit}" if spec.unit and spec.unit != "grey levels" else ""
            rows.setdefault(SAME_ROW.get(key, key), {})[pname] = f"{scores[pname][key]:.6g}{unit}"
    names = list(PROFILES)
    lines = ["| metric | " + " | ".join(f"`{n}`" for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for row, cells in rows.items():
        lines.append(f"| {row} | " + " | ".join(cells.get(n, "–") for n in names) + " |")
    h, w = ir.shape
    return (
        "## Worked example: one fused image, three profiles\n\n"
        f"TNO pair `{PAIR}` from `samples/tno` ({w}×{h}), fused with the Laplacian-pyramid "
        "baseline, scored by `egmt evaluate` under each profile (the VIF row holds CDDFuse's `VIFF`):\n\n"
        "```bash\n"
        f"egmt fuse --ir samples/tno/ir/{PAIR}.png --vi samples/tno/vi/{PAIR}.png --method laplacian_pyramid -o lp/{PAIR}.png\n"
        "for p in paper vifb cddfuse; do\n"
        f"  egmt evaluate --ir samples/tno/ir --vi samples/tno/vi --fused lp=lp --profile $p -o scores-$p\n"
        "done\n"
        "```\n\n" + "\n".join(lines) + "\n\n"
        "(`egmt evaluate` skips the three other sample pairs, which have no fused image here.)\n"
    )


def main() -> None:
    profiles = "\n".join(
        f"| `{p.name}` | {p.toolbox} | {', '.join(p.default)} |" for p in PROFILES.values()
    )
    with tempfile.TemporaryDirectory() as tmp:
        example = _worked_example(Path(tmp))
    text = (
        INTRO.format(profiles=profiles)
        + "\n## Definitions, metric × profile\n\n"
        "Generated from the registries in `egmt/metrics/profiles.py`; ↑ higher is better, ↓ lower is better, "
        "units in [] (grey levels: on the 0..255 scale).\n\n"
        + _definition_table()
        + "\n"
        + DIFFERENCES
        + "\n"
        + example
        + "\n*Generated by `python docs/make_metrics_md.py`.*\n"
    )
    write_text_atomic(REPO / "docs" / "metrics.md", text)
    print(f"wrote {REPO / 'docs' / 'metrics.md'}")


if __name__ == "__main__":
    main()
