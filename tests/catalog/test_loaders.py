"""The three catalogue layouts, on tiny files written here, and the Grocery Store Dataset from ../shared."""
import pytest

from prodlens.catalog import load_catalog, load_folder, load_grocery, load_manifest, save_manifest
from prodlens.errors import BadRecords, ProdlensError
from tests.helpers import make_folder_catalog, make_grocery


def test_folder_layout(tmp_path):
    cat = load_folder(make_folder_catalog(tmp_path))
    ids = {s.sample_id: s for s in cat.samples}
    assert set(ids) == {"page/p1/main", "video/p1/v0", "live/p2/clip1"}
    assert ids["page/p1/main"].title == "Red Shampoo" and ids["page/p1/main"].text == "A red bottle of shampoo."
    assert ids["video/p1/v0"].video == "video/p1/v0.mp4"
    assert ids["video/p1/v0"].asr_text == "hi everyone today the red shampoo"
    assert ids["live/p2/clip1"].images == tuple(f"live/p2/clip1/{i:03d}.jpg" for i in range(3))
    assert ids["live/p2/clip1"].split == "test"
    assert cat.products["p2"].category == "drinks"
    problems = {b.record: b.problem for b in cat.bad}
    assert "not valid UTF-8" in problems["page/p2/main"]
    assert "unsupported file type .xyz" in problems["live/p2/notes"]


def test_folder_split_that_does_not_exist(tmp_path):
    make_folder_catalog(tmp_path)
    with pytest.raises(ProdlensError, match="split 'val' not in this catalogue"):
        load_catalog("folder", tmp_path, split="val")


def test_manifest_round_trip_and_broken_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cat = load_folder(make_folder_catalog(tmp_path / "cat"))
    save_manifest(cat, tmp_path / "manifest")
    again = load_manifest(tmp_path / "manifest")
    assert [s.sample_id for s in again.samples] == [s.sample_id for s in cat.samples]
    assert again.root.resolve() == (tmp_path / "cat").resolve()
    # break two rows: a missing id and an unknown domain
    table = pq.read_table(tmp_path / "manifest" / "samples.parquet").to_pylist()
    table[0]["sample_id"] = None
    table[1]["domain"] = "radio"
    pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(tmp_path / "manifest" / "samples.parquet")),
                   tmp_path / "manifest" / "samples.parquet")
    broken = load_manifest(tmp_path / "manifest")
    assert len(broken.samples) == len(cat.samples) - 2
    assert any("empty sample_id" in b.problem for b in broken.bad)
    assert any("unknown domain 'radio'" in b.problem for b in broken.bad)


def test_corrupt_manifest_is_a_clear_error(tmp_path):
    cat = load_folder(make_folder_catalog(tmp_path / "cat"))
    save_manifest(cat, tmp_path / "m")
    (tmp_path / "m" / "samples.parquet").write_bytes(b"not parquet")
    with pytest.raises(ProdlensError, match="cannot read .*samples.parquet"):
        load_manifest(tmp_path / "m")


def test_grocery_layout_on_tiny_files(tmp_path):
    cat = load_catalog("grocery", make_grocery(tmp_path), split="test")
    assert sorted(cat.products) == ["Banana", "Granny-Smith", "Oatly-Oat-Milk"]
    assert len(cat.by_domain("page")) == 3 and len(cat.by_domain("live")) == 6
    assert all(s.split == "test" for s in cat.by_domain("live"))
    page = next(s for s in cat.by_domain("page") if s.product_id == "Granny-Smith")
    assert page.title == "Granny Smith" and "Granny Smith is a product" in page.text
    problems = [str(b) for b in cat.bad]
    assert any("test.txt line 7" in p and "class id 99" in p for p in problems)
    assert any("test.txt line 8" in p for p in problems)


def test_grocery_missing_split_is_a_clear_error(tmp_path):
    with pytest.raises(ProdlensError, match="split 'val' not found"):
        load_grocery(make_grocery(tmp_path), ("val",))


def test_real_grocery_store_dataset(grocery_root):
    cat = load_grocery(grocery_root)
    assert len(cat.products) == 81 and "Granny-Smith" in cat.products
    assert len(cat.by_domain("page")) == 81
    assert len([s for s in cat.samples if s.split == "train"]) == 2640
    assert len([s for s in cat.samples if s.split == "val"]) == 296
    assert not len(cat.bad)
    granny = cat.products["Granny-Smith"]
    assert granny.category == "Apple" and len(granny.description) > 50


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_folder_products_csv_rows_never_shift_and_every_bad_row_is_named_by_line(tmp_path, seed):
    import random

    from prodlens.catalog.text import MAX_TEXT_CHARS
    from tests.helpers import clean, messy_table, solid_image

    tab = seed == 1  # a products file may be TSV (a tab in its header)
    blob, cases = messy_table(random.Random(seed), ["product_id", "title", "category", "description"], tab)
    (tmp_path / "products.csv").write_bytes(blob)
    (tmp_path / "page" / "K0").mkdir(parents=True)
    solid_image().save(tmp_path / "page" / "K0" / "main.jpg")
    cat = load_folder(tmp_path)
    named = {b.record: b.problem for b in cat.bad}
    expected = {}
    for case in cases:
        record = f"products.csv line {case['line']}"
        key = case["values"][0].strip()
        if case["kind"] in ("blank-key", "bad-utf8", "tab-inside") or key in expected:
            assert record in named, case  # a bad row, or a product id again (its first row is kept)
            continue
        expected[key] = [clean(v)[:MAX_TEXT_CHARS] for v in case["values"][1:]]
    listed = {pid: p for pid, p in cat.products.items() if pid in expected}
    assert {pid: [p.title, p.category, p.description] for pid, p in listed.items()} == expected


def test_manifest_rows_never_shift_and_bad_rows_are_named_by_their_place_in_the_file(tmp_path):
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    from prodlens.catalog import open_manifest
    from tests.helpers import WORDS

    cat = load_folder(make_folder_catalog(tmp_path / "cat"))
    save_manifest(cat, tmp_path / "m")
    schema = pq.read_schema(tmp_path / "m" / "samples.parquet")
    rng = random.Random(0)
    rows, expected, bad_rows = [], {}, set()
    for n in range(60):
        title = rng.choice(["", " ".join(rng.sample(WORDS, 3)), "tab\tand\nnewline", "y" * (1 << 20)])
        row = {"sample_id": f"page/p1/s{n}", "product_id": "p1", "domain": "page", "images": ["page/p1/main.jpg"],
               "video": None, "title": title, "text": "", "asr_text": None, "split": rng.choice(["train", "test"])}
        kind = rng.random()
        if kind < 0.1:
            row["sample_id"] = None  # no id: named by its row
        elif kind < 0.2:
            row["images"] = [""]  # an empty path
        if kind < 0.2:
            bad_rows.add(n + 1)
        elif row["split"] == "train":
            expected[row["sample_id"]] = " ".join(title.split())[:20_000]
        rows.append(row)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "m" / "samples.parquet", row_group_size=7)
    bad = BadRecords()
    view = open_manifest(tmp_path / "m", split="train")
    got = {s.sample_id: s.title for batch in view.iter_samples(batch_rows=5, bad=bad) for s in batch}
    assert got == expected  # every good row keeps its own title, across row groups and batches
    named = {b.record for b in bad}
    for n in bad_rows:
        row = rows[n - 1]
        if row["split"] == "train":
            assert (row["sample_id"] or f"samples.parquet row {n}") in named
