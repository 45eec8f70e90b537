#!/usr/bin/env python3
"""`areo eval --detections` beside pycocotools on the same files.

Run by bench/coco_eval.sh. Generates COCO truth and results that exercise what pycocotools'
definitions turn on: crowd regions (matched without counting, never missed), duplicate
detections of one object, objects in every area range (small < 32^2 <= medium < 96^2 <= large),
tied scores, more than 100 detections in an image, classes without truth or without
detections, and images without either. Prints the twelve summary numbers and the per-class AP
from both, and fails when any differs by more than 1e-4.
"""

import contextlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

AREO = os.environ["AREO_BIN"]
KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def jitter(rng, box, amount):
    x, y, w, h = box
    return [round(x + rng.uniform(-amount, amount), 2), round(y + rng.uniform(-amount, amount), 2),
            round(max(1.0, w + rng.uniform(-amount, amount)), 2), round(max(1.0, h + rng.uniform(-amount, amount)), 2)]


def case(seed, images=6):
    rng = random.Random(seed)
    categories = [{"id": 1, "name": "crater"}, {"id": 2, "name": "dune"}, {"id": 5, "name": "streak"},
                  {"id": 7, "name": "spider"}]  # spider: no truth, some detections
    truth_images, annotations, results = [], [], []
    for image_id in range(1, images + 1):
        truth_images.append({"id": image_id, "file_name": f"i{image_id}.png", "width": 640, "height": 480})
        if image_id == images:
            continue  # an image with neither truth nor detections
        for _ in range(rng.randint(3, 12)):
            side = rng.choice([8, 20, 31, 33, 60, 95, 97, 150])  # every area range and its edges
            box = [rng.uniform(0, 640 - side), rng.uniform(0, 480 - side), side, side * rng.uniform(0.6, 1.4)]
            category = rng.choice([1, 1, 2, 5])
            crowd = int(rng.random() < 0.1)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category,
                                "bbox": [round(v, 2) for v in box], "area": round(box[2] * box[3], 2),
                                "iscrowd": crowd, "segmentation": []})
            if rng.random() < 0.8:  # found, more or less well
                score = rng.choice([0.9, 0.8, 0.8, 0.5, rng.random()])  # ties on purpose
                results.append({"image_id": image_id, "category_id": category,
                                "bbox": jitter(rng, box, side * 0.15), "score": score})
                if rng.random() < 0.25:  # a duplicate of the same object
                    results.append({"image_id": image_id, "category_id": category,
                                    "bbox": jitter(rng, box, side * 0.1), "score": round(score * 0.9, 3)})
        for _ in range(rng.randint(0, 4)):  # false detections, spiders among them
            side = rng.choice([10, 40, 120])
            results.append({"image_id": image_id, "category_id": rng.choice([1, 2, 7]),
                            "bbox": [round(rng.uniform(0, 500), 2), round(rng.uniform(0, 350), 2), side, side],
                            "score": round(rng.random(), 3)})
    # More than 100 detections in one image: only the 100 best count for AR100 and AP.
    for _ in range(130):
        results.append({"image_id": 1, "category_id": 1,
                        "bbox": [round(rng.uniform(0, 600), 2), round(rng.uniform(0, 440), 2), 12, 12],
                        "score": round(rng.uniform(0, 0.3), 3)})
    truth = {"images": truth_images, "annotations": annotations, "categories": categories}
    return truth, results


def pycocotools(truth_path, results_path):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(truth_path))
        dt = gt.loadRes(str(results_path))
        evaluation = COCOeval(gt, dt, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = dict(zip(KEYS, evaluation.stats))
    per_class = {}
    precision = evaluation.eval["precision"]  # T x R x K x A x M
    for k, category_id in enumerate(evaluation.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        if p.size:
            per_class[gt.loadCats(int(category_id))[0]["name"]] = float(p.mean())
    return stats, per_class


def areo(truth_path, results_path):
    run = subprocess.run([AREO, "--json", "eval", "--truth", str(truth_path), "--detections", str(results_path)],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(run.stderr)
    report = json.loads(run.stdout)
    return report["metrics"], {c["class"]: c["ap"] for c in report["classes"] if c["ap"] is not None}


def main():
    folder = Path(tempfile.mkdtemp(prefix="areo-coco-eval-"))
    worst = 0.0
    for seed in range(5):
        truth, results = case(seed)
        truth_path, results_path = folder / f"truth{seed}.json", folder / f"results{seed}.json"
        truth_path.write_text(json.dumps(truth))
        results_path.write_text(json.dumps(results))
        theirs, their_classes = pycocotools(truth_path, results_path)
        ours, our_classes = areo(truth_path, results_path)
        crowds = sum(a["iscrowd"] for a in truth["annotations"])
        print(f"case {seed}: {len(truth['annotations'])} truth objects ({crowds} crowd), {len(results)} detections")
        print(f"  {'metric':<8}{'pycocotools':>13}{'areo':>10}{'difference':>12}")
        for key in KEYS:
            difference = abs(theirs[key] - ours[key])
            worst = max(worst, difference)
            print(f"  {key:<8}{theirs[key]:>13.6f}{ours[key]:>10.6f}{difference:>12.2e}")
        for name in sorted(set(their_classes) | set(our_classes)):
            a, b = their_classes.get(name), our_classes.get(name)
            difference = abs(a - b) if a is not None and b is not None else float("inf")
            worst = max(worst, difference)
            print(f"  AP {name:<5}{a if a is not None else float('nan'):>13.6f}"
                  f"{b if b is not None else float('nan'):>10.6f}{difference:>12.2e}")
    print(f"largest difference: {worst:.2e} (files in {folder})")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
