#!/usr/bin/env python3
"""Annotation conversions by areo and by globox, read back by a small independent parser.

Run by bench/annotations.sh (which installs globox and pycocotools into a venv under target/).
Every input is converted to YOLO, PASCAL VOC and COCO by both tools; each output is read back
here and compared with the truth this script reads from the input by the format's own
documentation:

- COCO: `bbox` is `[x, y, w, h]` in pixels from the image's corner; one annotation is one
  object, whatever its segmentation; ids are positive (pycocotools' matching takes 0 for "none").
- YOLO: `class cx cy w h`, fractions of the image's width and height.
- PASCAL VOC: `xmin ymin xmax ymax` as LabelImg writes and reads them (positions on the image).
- LabelMe: `points`; a circle is its centre and a point on its rim.

An object partly outside its image is clipped to it; one with nothing inside is dropped (a
label of nothing); an image whose name leaves the output folder is refused. Every difference
between the tools is printed with who is right by those rules; the script fails when areo is.
Then each COCO file areo writes is scored against itself with pycocotools (AP must be 1.0), and
so is globox's, for comparison.
"""

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import globox
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

AREO = os.environ["AREO_BIN"]
FIXTURES = Path(os.environ["FIXTURES"])


# ---------------------------------------------------------------- the independent reader


def clip(box, size):
    """The box clipped to the image, or None when nothing of it is inside."""
    (x0, y0, x1, y1), (w, h) = box, size
    if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        if not (x0 == x1 and y0 == y1 and 0 <= x0 <= w and 0 <= y0 <= h):
            return None
    return (max(x0, 0.0), max(y0, 0.0), min(x1, w), min(y1, h))


def truth_of_coco(path):
    data = json.loads(Path(path).read_text())
    names = {c["id"]: c["name"] for c in data.get("categories", [])}
    images = {}
    by_id = {}
    for image in data["images"]:
        by_id[image["id"]] = image["file_name"]
        images[image["file_name"]] = ((image["width"], image["height"]), [])
    for a in data.get("annotations", []):
        name = by_id[a["image_id"]]
        if "bbox" in a:
            x, y, w, h = a["bbox"]
        else:
            xs = [v for poly in a["segmentation"] for v in poly[0::2]]
            ys = [v for poly in a["segmentation"] for v in poly[1::2]]
            x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
        images[name][1].append((names[a["category_id"]], (x, y, x + w, y + h)))
    return images


def truth_of_voc(folder):
    images = {}
    for path in sorted(Path(folder).glob("*.xml")):
        root = ET.parse(path).getroot()
        size = root.find("size")
        dims = (int(size.findtext("width")), int(size.findtext("height")))
        boxes = []
        for o in root.iter("object"):
            b = o.find("bndbox")
            boxes.append(
                (o.findtext("name"), tuple(float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")))
            )
        images[root.findtext("filename")] = (dims, boxes)
    return images


def truth_of_labelme(folder):
    images = {}
    for path in sorted(Path(folder).glob("*.json")):
        data = json.loads(path.read_text())
        boxes = []
        for s in data["shapes"]:
            points = s["points"]
            kind = s.get("shape_type") or "polygon"
            if kind == "circle":
                (cx, cy), (px, py) = points
                r = math.hypot(px - cx, py - cy)
                box = (cx - r, cy - r, cx + r, cy + r)
            elif kind == "mask":
                continue  # its pixels live in the embedded PNG; not a box question
            else:
                xs, ys = [p[0] for p in points], [p[1] for p in points]
                box = (min(xs), min(ys), max(xs), max(ys))
            boxes.append((s["label"], box))
        images[data["imagePath"]] = ((data["imageWidth"], data["imageHeight"]), boxes)
    return images


def truth(images):
    out = {}
    for name, (size, boxes) in images.items():
        kept = [(label, clip(box, size)) for label, box in boxes]
        out[stem(name)] = (size, sorted((l, b) for l, b in kept if b is not None))
    return out


def stem(name):
    return Path(name).stem


# ------------------------------------------------------------- reading the tools' outputs


def read_voc_output(folder):
    out = {}
    for path in Path(folder).rglob("*.xml"):
        root = ET.parse(path).getroot()
        boxes = []
        for o in root.iter("object"):
            b = o.find("bndbox")
            boxes.append(
                (o.findtext("name"), tuple(float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")))
            )
        out[path.stem] = sorted(boxes)
    return out


def read_yolo_output(folder, names, sizes):
    out = {}
    for path in Path(folder).rglob("*.txt"):
        if path.name == "classes.txt":
            continue
        w, h = sizes[path.stem]
        boxes = []
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            c, cx, cy, bw, bh = line.split()
            cx, cy, bw, bh = float(cx), float(cy), float(bw), float(bh)
            boxes.append(
                (names[int(c)], ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
            )
        out[path.stem] = sorted(boxes)
    return out


def read_coco_output(path):
    data = json.loads(Path(path).read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    by_id = {i["id"]: stem(i["file_name"]) for i in data["images"]}
    out = {name: [] for name in by_id.values()}
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        out[by_id[a["image_id"]]].append((names[a["category_id"]], (x, y, x + w, y + h)))
    problems = [f"annotation id {a['id']}: ids must be positive" for a in data["annotations"] if a["id"] <= 0]
    return {k: sorted(v) for k, v in out.items()}, problems


# ------------------------------------------------------------------------ the conversions


def areo(source_format, inputs, target, out, extra=()):
    args = [AREO, "labels", "convert", "--from", source_format, "--to", target, *inputs, "--out", str(out), *extra]
    run = subprocess.run(args, capture_output=True, text=True)
    return run.returncode, run.stdout + run.stderr


def globox_set(source_format, inputs):
    if source_format == "coco":
        return globox.AnnotationSet.from_coco(inputs[0])
    if source_format == "voc":
        return globox.AnnotationSet.from_pascal_voc(inputs[0])
    return globox.AnnotationSet.from_labelme(inputs[0], include_poly=True)


def convert_with_globox(source_format, inputs, target, out):
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            boxes = globox_set(source_format, inputs)
            out.mkdir(parents=True, exist_ok=True)
            labels = sorted({b.label for a in boxes for b in a.boxes})
            if target == "yolo":
                boxes.save_yolo_darknet(out, label_to_id={l: i for i, l in enumerate(labels)})
                (out / "classes.txt").write_text("".join(f"{l}\n" for l in labels))
            elif target == "voc":
                boxes.save_pascal_voc(out)
            else:
                auto = source_format != "coco"
                boxes.save_coco(out / "annotations.json", auto_ids=auto)
        return 0, ""
    except Exception as error:  # globox raises assertion and parsing errors alike
        return 1, f"{type(error).__name__}: {error}"


def read_output(target, out, sizes):
    if target == "voc":
        return read_voc_output(out), []
    if target == "yolo":
        names = (out / "classes.txt").read_text().split("\n") if (out / "classes.txt").exists() else []
        return read_yolo_output(out, names, sizes), []
    path = out / "annotations.json"
    return read_coco_output(path) if path.exists() else ({}, [])


# ----------------------------------------------------------------------------- comparing


def class_key(name):
    """Class names as areo compares them: case, spaces, `_` and `-` aside."""
    return "".join(c for c in name.lower() if c not in " _-")


def close(a, b, tolerance):
    return class_key(a[0]) == class_key(b[0]) and all(abs(p - q) <= tolerance for p, q in zip(a[1], b[1]))


def same(got, want, tolerance):
    return len(got) == len(want) and all(close(g, w, tolerance) for g, w in zip(got, want))


def show(boxes):
    if boxes is None:
        return "(no file)"
    return "; ".join(f"{l} ({', '.join(f'{v:g}' for v in b)})" for l, b in boxes) or "(none)"


def compare(case, target, expected, escaped, tools):
    """Prints every image where the tools disagree; returns how many areo got wrong."""
    areo_wrong = 0
    names = sorted(set(expected) | set(tools["areo"][0]) | set(tools["globox"][0]))
    for name in names:
        size, want = expected.get(name, ((1, 1), None))
        # YOLO keeps 6 decimals of the image size (LabelImg's format); others are exact.
        tolerance = {"yolo": 1.5e-6 * max(size)}.get(target, 1e-6)
        verdicts = {}
        for tool, (boxes, _) in tools.items():
            got = boxes.get(name)
            if tool in escaped:
                verdicts[tool] = False
            elif want is None:
                verdicts[tool] = got is None
            else:
                verdicts[tool] = got is not None and same(got, want, tolerance)
        if verdicts["areo"] and verdicts["globox"]:
            continue
        right = [t for t, ok in verdicts.items() if ok] or ["neither"]
        print(f"  {case} -> {target}, {name}:")
        print(f"    truth : {show(want)}, inside the output folder")
        for tool, (boxes, _) in tools.items():
            where = f" (and {escaped[tool]}, outside the output folder)" if tool in escaped else ""
            print(f"    {tool:<6}: {show(boxes.get(name))}{where}")
        print(f"    right : {', '.join(right)}")
        areo_wrong += not verdicts["areo"]
    for tool, (_, problems) in tools.items():
        for problem in problems:
            print(f"  {case} -> {target}: {tool}: {problem}")
            areo_wrong += tool == "areo"
    return areo_wrong


# --------------------------------------------------------------------------- the inputs


def tricky_coco(folder):
    """Border, zero-size, outside, thin, sub-pixel, multi-part, non-ASCII and empty cases."""
    images = [
        {"id": 1, "file_name": "edges.jpg", "width": 100, "height": 50},
        {"id": 2, "file_name": "cratère ünïcode.jpg", "width": 64, "height": 64},
        {"id": 3, "file_name": "empty.jpg", "width": 32, "height": 32},
        {"id": 4, "file_name": "parts.jpg", "width": 80, "height": 60},
    ]
    boxes = [
        (1, 1, [0, 0, 10, 10]),  # on the image's corner
        (1, 1, [90, 40, 10, 10]),  # on the far corner
        (1, 1, [10.5, 20.25, 30.7, 20.9]),  # sub-pixel
        (1, 1, [0.25, 10, 0.5, 5]),  # thin, against the left edge
        (1, 1, [-20, 5, 10, 3]),  # wholly outside
        (1, 1, [95, 45, 10, 10]),  # across the far corner
        (2, 2, [3.25, 4.75, 8.5, 9.125]),
    ]
    annotations = [
        {"id": i + 1, "image_id": image, "category_id": category, "bbox": bbox, "area": bbox[2] * bbox[3],
         "iscrowd": 0, "segmentation": []}
        for i, (image, category, bbox) in enumerate(boxes)
    ]
    annotations.append(
        {"id": 100, "image_id": 4, "category_id": 1, "bbox": [10, 10, 40, 30], "area": 500, "iscrowd": 0,
         "segmentation": [[10, 10, 30, 10, 30, 25], [35, 30, 50, 30, 50, 40]]}
    )
    data = {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "crater"}, {"id": 2, "name": "ударный кратер"}]}
    path = folder / "tricky.json"
    path.write_text(json.dumps(data, ensure_ascii=False))
    return path


def zero_size_coco(folder):
    """A box of no size inside the image: kept by both rules, matched by nothing in AP."""
    data = {"images": [{"id": 1, "file_name": "zero.jpg", "width": 10, "height": 10}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 0, 0], "area": 0,
                             "iscrowd": 0, "segmentation": []}],
            "categories": [{"id": 1, "name": "crater"}]}
    path = folder / "zero.json"
    path.write_text(json.dumps(data))
    return path


def hostile_coco(folder):
    """An image named to write outside the output folder: its labels must stay inside."""
    data = {"images": [{"id": 1, "file_name": "../../escaped.jpg", "width": 10, "height": 10}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4,
                             "iscrowd": 0, "segmentation": []}],
            "categories": [{"id": 1, "name": "crater"}]}
    path = folder / "hostile.json"
    path.write_text(json.dumps(data))
    return path


def tricky_voc(folder):
    folder.mkdir()
    (folder / "decimals.xml").write_text(
        "<annotation><filename>decimals.jpg</filename><size><width>40</width><height>30</height>"
        "<depth>3</depth></size>"
        "<object><name>crater</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>12.5</xmax><ymax>7.25</ymax></bndbox></object>"
        "<object><name>crater</name><bndbox><xmin>30</xmin><ymin>20</ymin><xmax>45</xmax><ymax>30</ymax></bndbox></object>"
        "</annotation>"
    )
    return folder


# ------------------------------------------------------------------------- pycocotools


def self_ap(path):
    """pycocotools' AP of a COCO file scored against itself, every object found at score 1."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(path))
        results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
                   for a in gt.dataset["annotations"]]
        if not results:
            return float("nan")
        dt = gt.loadRes(results)
        evaluation = COCOeval(gt, dt, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats[0]


def main():
    work = Path(tempfile.mkdtemp(prefix="areo-annotations-"))
    inputs = work / "inputs"
    inputs.mkdir()
    voc_fixtures = work / "voc-fixtures"
    voc_fixtures.mkdir()
    for path in list((FIXTURES / "voc-labelimg").glob("*.xml")) + list((FIXTURES / "mars-labelimg-ssd").glob("*.xml")):
        (voc_fixtures / path.name).write_bytes(path.read_bytes())
    labelme = work / "labelme"
    labelme.mkdir()
    primitives = json.loads((FIXTURES / "labelme/primitives.labelme-5.7.0.json").read_text())
    # The area shapes: whether a line or a point is an object to box is a policy, not a
    # question of exactness.
    primitives["shapes"] = [
        s for s in primitives["shapes"] if s.get("shape_type") in ("rectangle", "polygon", "circle")
    ]
    (labelme / "primitives.json").write_text(json.dumps(primitives))
    cases = [
        ("coco fixture (labelme2coco)", "coco", [FIXTURES / "coco/labelme2coco_annotations.json"],
         truth_of_coco(FIXTURES / "coco/labelme2coco_annotations.json")),
        ("coco tricky", "coco", [tricky_coco(inputs)], truth_of_coco(inputs / "tricky.json")),
        ("coco zero-size", "coco", [zero_size_coco(inputs)], truth_of_coco(inputs / "zero.json")),
        ("coco hostile name", "coco", [hostile_coco(inputs)], truth_of_coco(inputs / "hostile.json")),
        ("voc fixtures (LabelImg)", "voc", [voc_fixtures], truth_of_voc(voc_fixtures)),
        ("voc tricky", "voc", [tricky_voc(inputs / "voc")], truth_of_voc(inputs / "voc")),
        ("labelme fixture (5.7 primitives)", "labelme", [labelme], truth_of_labelme(labelme)),
    ]
    areo_wrong = 0
    coco_outputs = []
    print("Disagreements (truth read from the input by the format's documentation):")
    for case, source_format, paths, raw in cases:
        expected = truth(raw)
        sizes = {k: size for k, (size, _) in expected.items()}
        for target in ("yolo", "voc", "coco"):
            outs, escaped = {}, {}
            for tool in ("areo", "globox"):
                out = work / "out" / case.replace(" ", "_") / target / tool / "labels"
                out.mkdir(parents=True, exist_ok=True)
                before = set(work.rglob("*"))
                if tool == "areo":
                    code, text = areo(source_format, [str(p) for p in paths], target, out)
                else:
                    code, text = convert_with_globox(source_format, [str(p) for p in paths], target, out)
                boxes, problems = read_output(target, out, sizes)
                if code != 0:
                    problems.append("failed: " + " / ".join(text.strip().splitlines()[-2:]))
                outside = [p for p in set(work.rglob("*")) - before if p.is_file() and out not in p.parents]
                if outside:
                    escaped[tool] = ", ".join(str(p.relative_to(work)) for p in outside)
                outs[tool] = (boxes, problems)
                if target == "coco" and (out / "annotations.json").exists() and case != "coco zero-size":
                    coco_outputs.append((case, tool, out / "annotations.json"))
            areo_wrong += compare(case, target, expected, escaped, outs)
    print()
    print("pycocotools AP@[.5:.95] of each COCO file scored against itself (1.0 expected):")
    for case, tool, path in coco_outputs:
        ap = self_ap(path)
        print(f"  {case:<34} {tool:<6} {ap:.4f}")
        if tool == "areo" and not math.isnan(ap) and abs(ap - 1.0) > 1e-9:
            areo_wrong += 1
    print()
    print(f"areo wrong in {areo_wrong} case(s); outputs kept in {work}")
    return 1 if areo_wrong else 0


if __name__ == "__main__":
    sys.exit(main())
