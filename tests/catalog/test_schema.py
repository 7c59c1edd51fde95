from pathlib import Path

import pytest

from prodlens.catalog import Catalog, Product, Sample
from prodlens.catalog.schema import resolve_media_path
from prodlens.errors import RecordError


def _build(samples, products=(Product("p1"),)):
    return Catalog.build(Path("/data/cat"), list(products), samples)


def test_paths_escaping_the_root_are_refused():
    with pytest.raises(RecordError, match="escapes"):
        resolve_media_path(Path("/data/cat"), "../secrets/x.jpg", "page/p1")
    with pytest.raises(RecordError, match="escapes"):
        resolve_media_path(Path("/data/cat"), "/etc/passwd", "page/p1")
    assert resolve_media_path(Path("/data/cat"), "a/b.jpg", "r") == Path("/data/cat/a/b.jpg").resolve()


def test_bad_records_are_collected_not_fatal():
    cat = _build([
        Sample("ok", "p1", "page", images=("a.jpg",)),
        Sample("ok", "p1", "page", images=("b.jpg",)),  # duplicate id
        Sample("esc", "p1", "video", video="../../x.mp4"),
        Sample("unknown-product", "p9", "live", images=("c.jpg",)),
        Sample("bad-domain", "p1", "tv", images=("d.jpg",)),
        Sample("no-media", "p1", "live"),
        Sample("page-video", "p1", "page", video="v.mp4"),
    ], products=[Product("p1"), Product("p1")])
    assert [s.sample_id for s in cat.samples] == ["ok"]
    problems = {b.record: b.problem for b in cat.bad}
    assert problems["ok"] == "duplicate sample_id"
    assert "escapes" in problems["esc"]
    assert "unknown product" in problems["unknown-product"]
    assert "unknown domain" in problems["bad-domain"]
    assert "no media" in problems["no-media"]
    assert "page sample takes images" in problems["page-video"]
    assert problems["product p1"] == "duplicate product_id"


def test_select_keeps_split_less_samples_in_every_split():
    cat = _build([Sample("pg", "p1", "page", images=("a.jpg",)),
                  Sample("l1", "p1", "live", images=("b.jpg",), split="train"),
                  Sample("l2", "p1", "live", images=("c.jpg",), split="val")])
    assert [s.sample_id for s in cat.select("val").samples] == ["pg", "l2"]
    assert cat.splits == ["train", "val"]
    assert cat.select(domains=["live"]).domains == ["live"]


def test_sample_text_joins_title_description_and_asr():
    cat = _build([Sample("v", "p1", "video", video="v.mp4", title="My haul", asr_text="this shampoo smells great")])
    s = cat.samples[0]
    assert cat.sample_text(s) == "My haul. this shampoo smells great"
    assert cat.sample_text(s, use_asr=False) == "My haul"
