"""The ROPE loader on files written exactly as shared/specs/rope-format.md shows ROPE's rows, in shuffled order."""
import json

import pyarrow.parquet as pq
import pytest

from prodlens.catalog import import_rope, load_catalog, load_rope, open_manifest
from prodlens.demo.rope_files import write_rope_files
from prodlens.errors import ProdlensError
from tests.helpers import LIVES, PAGES, VIDEOS, write_spec_fixture


def test_every_sample_has_its_product_text_and_frames_in_time_order(tmp_path):
    cat = load_rope(write_spec_fixture(tmp_path / "rope"), media_dir=tmp_path / "downloads")
    assert not len(cat.bad), [str(b) for b in cat.bad]
    assert len(cat.samples) == len(PAGES) + len(VIDEOS) + len(LIVES) + 1
    assert cat.root == tmp_path / "downloads"  # bare names resolve under the media folder the user names
    by_id = {s.sample_id: s for s in cat.samples}
    for product, page, title, name in PAGES:
        s = by_id[f"page/{page}"]
        assert (s.product_id, s.images, s.split) == (product, (name,), "train")
        assert s.title == ("" if title == "空" else title)
    for domain, rows in (("video", VIDEOS), ("live", LIVES)):
        for product, clip, asr, frames in rows:
            s = by_id[f"{domain}/{clip}"]
            assert s.product_id == product and s.images == tuple(n for _, n in sorted(frames))
            assert s.asr_text == (None if asr == "空" else asr)
    assert by_id["page/7"].images == (PAGES[0][3],)  # the URL became its file name
    assert by_id["live/2240805"].asr_text.startswith("内里是加绒")  # two spaces after the comma are not text
    assert by_id["video/3179594"].asr_text == "不买亏大了,碧根果才1元,限时限量速抢"  # commas inside ASR text kept
    test_page = by_id["page/test-7"]
    assert (test_page.product_id, test_page.split, test_page.title) == ("test-5", "test", "测试商品")
    assert cat.products["99721"].title == "简约西装外套"  # the first titled page (1366457's title is 空)
    assert cat.products["26140"].title == "碧根果, 每日坚果 500g"
    assert sorted(cat.products) == ["26140", "99721", "test-5"]


def test_bad_rows_are_reported_and_the_rest_loads(tmp_path):
    extra = {
        "training_product_videos_pair.txt": ["26140, 3179594",  # the same row twice
                                             "99721, 2830227x",  # not an integer id
                                             "26140, 2830227",  # one video, two products
                                             "26140, 777"],  # a video with no frames
        "training_video_frames.txt": ["3179594, 240, again.jpg",  # frame number 240 twice
                                      "555, 1, orphan.jpg",  # a clip no pair file names
                                      "3179594 no commas here"],
        "training_live_asrs.txt": ["31, 这个直播间没有这个"],  # text of an unknown clip
    }
    root = write_spec_fixture(tmp_path / "rope", extra)
    with open(root / "training_page_titles.txt", "ab") as f:
        f.write(b"728, \xff\xfe broken utf-8\n")
    report = import_rope(root, tmp_path / "manifest", progress=False)
    bad = [json.loads(line) for line in (tmp_path / "manifest" / "bad_records.jsonl").read_text().splitlines()]
    problems = {(b["record"], b["problem"]) for b in bad}
    assert report.bad == len(bad) == 9, bad
    assert ("video/3179594", "listed twice in training_product_videos_pair.txt") in problems
    assert any(r == "video/2830227" and "two products" in p and "kept 99721" in p for r, p in problems)
    assert any("not an integer" in p and "2830227x" in p for _, p in problems)
    assert ("video/777", "no frame listed in training_video_frames.txt") in problems
    assert ("video/3179594", "frame number 240 listed twice in training_video_frames.txt") in problems
    assert ("video/555", "listed in training_video_frames.txt but in no row of training_product_videos_pair.txt") \
        in problems
    assert any(r.startswith("training_video_frames.txt line") and "3 comma-separated" in p for r, p in problems)
    assert ("live/31", "listed in training_live_asrs.txt but in no row of training_product_lives_pair.txt") in problems
    assert any(r.startswith("training_page_titles.txt line") and "UTF-8" in p for r, p in problems)
    cat = open_manifest(tmp_path / "manifest").to_catalog()
    by_id = {s.sample_id: s for s in cat.samples}
    assert by_id["video/2830227"].product_id == "99721"  # the first pair row wins
    assert [n for n in by_id["video/3179594"].images] == [n for _, n in VIDEOS[0][3]]  # the first frame-240 row
    assert report.samples == len(cat.samples) == 8


def test_generated_catalogue_round_trips_exactly(tmp_path):
    truth = write_rope_files(tmp_path / "rope", 3000, frames=5, seed=3, keep_truth=True)
    cat = load_rope(tmp_path / "rope")
    assert not len(cat.bad)
    assert len(cat.samples) == truth.samples and len(cat.products) == truth.products
    for s in cat.samples:
        assert s.product_id == truth.product_of[s.sample_id]
        assert list(s.images) == truth.frames_of[s.sample_id]
        assert (s.title if s.domain == "page" else s.asr_text or "") == truth.text_of[s.sample_id]


def test_many_buckets_give_the_same_catalogue(tmp_path, monkeypatch):
    from prodlens.catalog import rope

    write_rope_files(tmp_path / "rope", 2000, frames=4, seed=5)
    one = load_rope(tmp_path / "rope")
    monkeypatch.setattr(rope, "BUCKET_BYTES", 20_000)  # ~ a dozen buckets per domain
    many = load_rope(tmp_path / "rope")
    assert sorted(one.samples, key=lambda s: s.sample_id) == sorted(many.samples, key=lambda s: s.sample_id)
    assert one.products == many.products


def test_manifest_view_streams_selections_without_touching_media(tmp_path):
    write_spec_fixture(tmp_path / "rope")
    import_rope(tmp_path / "rope", tmp_path / "m", media_dir=tmp_path / "nowhere", progress=False)
    view = open_manifest(tmp_path / "m")
    assert view.count() == 8 and view.select(split="test").count() == 1
    clips = view.select(split="train", domains=["video", "live"])
    assert clips.count() == 4
    batches = list(clips.iter_samples(batch_rows=3))
    assert [len(b) for b in batches] == [3, 1] and {s.domain for b in batches for s in b} == {"video", "live"}
    assert view.column_values("split") == ["test", "train"]
    assert pq.ParquetFile(tmp_path / "m" / "samples.parquet").metadata.num_rows == 8
    # the media folder does not exist: loading does not look; decoding says which file is missing
    cat = clips.to_catalog()
    with pytest.raises(Exception, match="not found|No such file"):
        from prodlens.media import load_image

        load_image(cat.path(cat.samples[0].images[0]), cat.samples[0].sample_id)


def test_missing_split_and_catalog_source(tmp_path):
    root = write_spec_fixture(tmp_path / "rope")
    assert [s.sample_id for s in load_catalog("rope", root, split="test").samples] == ["page/test-7"]
    (root / "test_product_pages_pair.txt").unlink()
    with pytest.raises(ProdlensError, match="ROPE split 'test'"):
        load_rope(root, ("test",))


def test_import_and_validate_commands(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    prodlens = str(Path(sys.executable).parent / "prodlens")
    root = write_spec_fixture(tmp_path / "rope")
    media = tmp_path / "downloads"
    media.mkdir()
    for _, _, _, name in PAGES:
        Image.new("RGB", (32, 32), (10, 200, 30)).save(media / name)
    env = {**os.environ, "COLUMNS": "200"}
    imported = subprocess.run([prodlens, "catalog", "import", "rope", "--root", str(root), "--media-dir", str(media),
                               "--out", str(tmp_path / "m")], capture_output=True, text=True, env=env, timeout=600)
    assert imported.returncode == 0, imported.stderr
    assert "wrote manifest of 8 samples (4 pages, 2 videos, 2 live clips) of 3 products" in imported.stdout
    records = subprocess.run([prodlens, "catalog", "validate", "manifest", "--root", str(tmp_path / "m"),
                              "--no-media"], capture_output=True, text=True, env=env, timeout=600)
    assert records.returncode == 0, records.stderr
    full = subprocess.run([prodlens, "catalog", "validate", "manifest", "--root", str(tmp_path / "m")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert full.returncode == 1  # the clips' frames were never downloaded: each clip is named
    assert "video/3179594" in full.stderr and "live/24" in full.stderr and "page/7 " not in full.stderr
