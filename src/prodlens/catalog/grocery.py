"""The Grocery Store Dataset (Klasson et al., WACV 2019) read as a two-domain product catalogue.

- page: each class's iconic catalogue image + its description text (shared by every split: the gallery);
- live: each in-store smartphone photo is a one-frame "live" sample, in the split its list file names.

Product ids are the class names of `classes.csv` (e.g. `Granny-Smith`); categories are the coarse class names.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..errors import BadRecords, ProdlensError, RecordError
from .schema import Catalog, Product, Sample, posix
from .text import read_text_file

SPLITS = ("train", "val", "test")


def load_grocery(root: str | Path, splits: tuple[str, ...] | None = None) -> Catalog:
    root = Path(root)
    classes_csv = root / "classes.csv"
    if not classes_csv.exists():
        raise ProdlensError(f"{root} does not look like the Grocery Store Dataset: classes.csv is missing")
    bad = BadRecords()
    products: list[Product] = []
    samples: list[Sample] = []
    fine_id_to_product: dict[int, str] = {}
    with open(classes_csv, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader, None)
        while True:
            line_no = reader.line_num + 1  # where the next row starts (a quoted field may span lines)
            row = next(reader, None)
            if row is None:
                break
            if not row:
                continue
            record = f"classes.csv line {line_no}"
            if len(row) < 6:
                bad.add(record, f"expected 6 columns, got {len(row)}", "grocery")
                continue
            name, fine_id, coarse = row[0].strip(), row[1].strip(), row[2].strip()
            iconic, description_path = row[4].strip().lstrip("/"), row[5].strip().lstrip("/")
            try:
                fine_id_to_product[int(fine_id)] = name
            except ValueError:
                bad.add(record, f"class id {fine_id!r} is not an integer", "grocery")
                continue
            description = ""
            try:
                description = read_text_file(root / description_path, f"page/{name}")
            except RecordError as e:
                bad.add_error(e, "grocery")
            title = name.replace("-", " ")
            products.append(Product(name, title=title, category=coarse, description=description))
            samples.append(Sample(f"page/{name}", name, "page", images=(iconic,), title=title, text=description))
    wanted = splits or SPLITS
    found_any = False
    for split in wanted:
        list_file = root / f"{split}.txt"
        if not list_file.exists():
            if splits:  # asked for explicitly
                raise ProdlensError(f"split {split!r} not found: {list_file} is missing")
            continue
        found_any = True
        for line_no, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            record = f"{split}.txt line {line_no}"
            parts = [p.strip() for p in line.split(",")]
            try:
                rel, fine = parts[0], int(parts[1])
            except (IndexError, ValueError):
                bad.add(record, f"expected '<image path>, <class id>, <coarse id>', got {line.strip()!r}", "grocery")
                continue
            if fine not in fine_id_to_product:
                bad.add(record, f"class id {fine} is not in classes.csv", "grocery")
                continue
            rel = posix(rel.lstrip("/"))
            samples.append(Sample(f"live/{rel}", fine_id_to_product[fine], "live", images=(rel,), split=split))
    if not found_any:
        raise ProdlensError(f"no split list (train.txt / val.txt / test.txt) under {root}")
    return Catalog.build(root, products, samples, bad, name="grocery")
