from prodlens.catalog import load_folder, validate_catalog
from tests.helpers import make_folder_catalog


def test_validate_names_every_bad_media_file(tmp_path):
    root = make_folder_catalog(tmp_path)
    (root / "page" / "p1" / "main.jpg").write_bytes((root / "page" / "p1" / "main.jpg").read_bytes()[:200])
    (root / "video" / "p1" / "v0.mp4").write_bytes(b"\x00" * 1000)
    for f in (root / "live" / "p2" / "clip1").iterdir():
        f.write_bytes(b"garbage")
    bad = validate_catalog(load_folder(root), progress=False)
    by_record = {}
    for b in bad:
        by_record.setdefault(b.record, []).append(b.problem)
    assert any("truncated" in p for p in by_record["page/p1/main"])
    assert any("not a readable video" in p for p in by_record["video/p1/v0"])
    assert any("not a recognisable image" in p for p in by_record["live/p2/clip1"])
    assert any("UTF-8" in p for p in by_record["page/p2/main"])


def test_valid_catalogue_has_no_problems(tmp_path):
    root = make_folder_catalog(tmp_path)
    (root / "page" / "p2" / "main.txt").write_text("Blue Tea. Green tea in a blue box.")
    (root / "live" / "p2" / "notes.xyz").unlink()
    assert len(validate_catalog(load_folder(root), progress=False)) == 0


def test_an_unknown_domain_folder_and_an_unlisted_product_are_named(tmp_path):
    root = make_folder_catalog(tmp_path)
    (root / "page" / "p2" / "main.txt").write_text("Blue Tea. Green tea in a blue box.")
    (root / "live" / "p2" / "notes.xyz").unlink()
    (root / "tv" / "p1").mkdir(parents=True)  # a fourth "domain" prodlens does not know
    (root / "tv" / "p1" / "ad.mp4").write_bytes((root / "video" / "p1" / "v0.mp4").read_bytes())
    (root / "products.csv").write_text("product_id,title,category,description\np1,Red Tea,tea,Black tea.\n")
    problems = {b.record: b.problem for b in validate_catalog(load_folder(root), progress=False)}
    assert "not a domain folder" in problems["tv/"]
    assert "not in products.csv" in problems["page/p2"] and "page/p1" not in problems
