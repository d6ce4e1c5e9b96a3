"""Predicted (synthetic-defect) against measured (real-defect) recall, for docs/detectability.md.

For each real defect type of an MVTec AD category (default: bottle's ``broken_small`` and
``contamination``) it measures every ground-truth defect: its area (px, 8-connected regions of the
mask, the image's total) and its contrast -- the mean grey-level difference inside the mask between
the test image and the mean of the category's ``train/good`` images (the mean absolute difference;
its sign, darker or brighter, from the mean difference) (bottle is fixtured, so the mean
good part is a fair "what it should look like"). It then reads

- the recipe's ``detectability.json`` (``station eval --synthetic``): the predicted recall of each
  real defect is the recall of the synthetic cell nearest to it (area on a log scale, contrast), for
  the synthetic kind that resembles it (a darker defect: dark spots, a brighter one: bright spots;
  and texture/colour patches for every defect), averaged over the defects of the type;
- ``images.csv`` of ``station eval`` on the category with the same recipe: the measured recall is the
  share of that type's images judged NG with a counting region on the ground truth
  (``mean_region_overlap > 0``) -- the same rule as the synthetic count.

    python tools/real_vs_synthetic.py --data ../shared/data/mvtec_ad/bottle \\
        --recipe models/bottle_var --eval runs/eval-bottle_var
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from station.core.detectability import load_detectability  # noqa: E402
from station.core.images import load_image  # noqa: E402
from station.core.recipe import resolve_recipe_dir  # noqa: E402


def gray(path: Path) -> np.ndarray:
    return load_image(path, "gray").astype(np.float32)


def measure_defects(root: Path, kind: str, mean_good: np.ndarray) -> list[dict]:
    out = []
    for img_path in sorted((root / "test" / kind).glob("*.png")):
        mask = cv2.imread(str(root / "ground_truth" / kind / f"{img_path.stem}_mask.png"), cv2.IMREAD_GRAYSCALE) > 0
        image = gray(img_path)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
        diff = image[mask] - mean_good[mask]
        out.append({"image": img_path.stem, "area_px": int(mask.sum()), "regions": n - 1,
                    "largest_px": int(stats[1:, cv2.CC_STAT_AREA].max()) if n > 1 else 0,
                    "contrast": float(np.mean(np.abs(diff))), "shift": float(np.mean(diff)),
                    "darker": float(np.mean(diff)) < 0})
    return out


def nearest(values: tuple[float, ...], v: float, log: bool = False) -> int:
    arr = np.log(np.asarray(values)) if log else np.asarray(values)
    return int(np.argmin(np.abs(arr - (np.log(max(v, 1e-9)) if log else v))))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--recipe", type=Path, required=True)
    p.add_argument("--eval", type=Path, required=True, help="the station eval output folder (images.csv)")
    p.add_argument("--types", default="broken_small,contamination")
    args = p.parse_args(argv)
    table = load_detectability(resolve_recipe_dir(args.recipe))
    if table is None:
        raise SystemExit(f"{args.recipe}: no detectability.json; run station eval --synthetic first")
    goods = sorted((args.data / "train" / "good").glob("*.png"))
    mean_good = np.mean([gray(g) for g in goods], axis=0)
    rows = list(csv.DictReader(open(args.eval / "images.csv", encoding="utf-8")))
    print(f"recipe {table.info.get('recipe')} at threshold {table.threshold:.5g}, minimum area "
          f"{table.min_defect_area_px:g} px; synthetic defects placed in {table.info.get('placed_in')}")
    for kind in args.types.split(","):
        defects = measure_defects(args.data, kind, mean_good)
        areas = np.array([d["area_px"] for d in defects])
        contrasts = np.array([d["contrast"] for d in defects])
        predicted: dict[str, list[float]] = {"spot (dark/bright by sign)": [], "texture/colour patch": []}
        for d in defects:
            a = nearest(table.areas_px, d["area_px"], log=True)
            c = nearest(table.contrasts, d["contrast"])
            spot = table.kinds.index("dark_spot" if d["darker"] else "bright_spot")
            predicted["spot (dark/bright by sign)"].append(float(table.recall[spot, a, c]))
            predicted["texture/colour patch"].append(float(table.recall[table.kinds.index("patch"), a, c]))
        mine = [r for r in rows if r["label"] == kind]
        found = sum(r["verdict"] == "NG" and r["mean_region_overlap"] not in ("", "0.0000") for r in mine)
        ng = sum(r["verdict"] == "NG" for r in mine)
        print(f"\n{kind}: {len(defects)} images; area px median {np.median(areas):.0f} (range {areas.min()}-"
              f"{areas.max()}); contrast (mean |difference|) grey levels median {np.median(contrasts):.1f} (range "
              f"{contrasts.min():.1f}-{contrasts.max():.1f}); {sum(d['darker'] for d in defects)} darker")
        for name, values in predicted.items():
            print(f"  predicted recall as {name}: {np.mean(values) * 100:.0f} %")
        by_name = {Path(r["image"]).stem: r for r in mine}
        for d in defects:
            r = by_name.get(d["image"])
            if r is not None and not (r["verdict"] == "NG" and r["mean_region_overlap"] not in ("", "0.0000")):
                print(f"  missed {d['image']}: {d['area_px']} px, contrast {d['contrast']:.1f} (mean shift "
                      f"{d['shift']:+.1f}), verdict {r['verdict']}, score {float(r['score']):.3g}")
        print(f"  measured recall (NG with a region on the defect): {found}/{len(mine)} = "
              f"{found / max(1, len(mine)) * 100:.0f} % (NG at all: {ng}/{len(mine)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
