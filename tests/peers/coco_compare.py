"""Compares two COCO files as a pycocotools user would: the same categories (id, name,
supercategory), images (id, file name, size) and annotations by id (image, category, bbox,
segmentation, area, iscrowd, and the masks pycocotools draws from them).

Run by tests/label_fidelity.rs as `coco_compare.py BEFORE AFTER`; prints one JSON object,
{"differences": [...]}, empty when the files agree.
"""

import contextlib
import io
import json
import sys

from pycocotools import mask as masks
from pycocotools.coco import COCO


def load(path):
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(path)


def main():
    before, after = load(sys.argv[1]), load(sys.argv[2])
    differences = []

    def differ(what, a, b):
        if a != b:
            differences.append({"what": what, "before": a, "after": b})

    differ("category ids", sorted(before.getCatIds()), sorted(after.getCatIds()))
    for cid in before.getCatIds():
        a, b = before.loadCats(cid)[0], after.cats.get(cid, {})
        for key in ("name", "supercategory"):
            differ(f"category {cid} {key}", a.get(key), b.get(key))
    differ("image ids", sorted(before.getImgIds()), sorted(after.getImgIds()))
    for iid in before.getImgIds():
        a, b = before.loadImgs(iid)[0], after.imgs.get(iid, {})
        for key in ("file_name", "width", "height"):
            differ(f"image {iid} {key}", a.get(key), b.get(key))
    differ("annotation ids", sorted(before.getAnnIds()), sorted(after.getAnnIds()))
    for aid in before.getAnnIds():
        a, b = before.loadAnns(aid)[0], after.anns.get(aid)
        if b is None:
            continue
        for key in ("image_id", "category_id", "bbox", "segmentation", "area", "iscrowd"):
            differ(f"annotation {aid} {key}", a.get(key), b.get(key))
        differ(f"annotation {aid} attributes", a.get("attributes"), b.get("attributes"))
        # The mask pycocotools draws from each: the same pixels.
        ma = masks.decode(before.annToRLE(a)) if a.get("segmentation") else None
        mb = masks.decode(after.annToRLE(b)) if b.get("segmentation") else None
        if ma is not None and mb is not None:
            differ(f"annotation {aid} mask pixels", int(ma.sum()), int(mb.sum()))
    print(json.dumps({"differences": differences}))


if __name__ == "__main__":
    main()
