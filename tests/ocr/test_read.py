"""Reading text in pictures with the real OCR engines, on images the tests render themselves."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from prodlens.cache import FeatureCache
from prodlens.demo.synth import _font
from prodlens.errors import BadRecords, ProdlensError
from prodlens.ocr import OcrReader, keyframes
from prodlens.ocr.engines import build_ocr_engine


def label(words: str, size: tuple[int, int] = (360, 120), font_size: int = 40, angle: float = 0.0) -> Image.Image:
    """Dark words on a light card, optionally turned by `angle` degrees (as a pack held at a slant)."""
    img = Image.new("RGB", size, (245, 240, 225))
    d = ImageDraw.Draw(img)
    d.text((16, (size[1] - font_size) // 2), words, fill=(20, 60, 150), font=_font(font_size))
    return img.rotate(angle, expand=True, fillcolor=(245, 240, 225)) if angle else img


@pytest.fixture(scope="module")
def reader():
    return OcrReader(cache=FeatureCache(None))


def test_reads_a_printed_brand_with_its_box_and_confidence(reader):
    (reading,) = reader.read([label("TROPICANA")])
    assert "TROPICANA" in reading.text.upper().replace(" ", "")
    line = reading.lines[0]
    assert 0.5 <= line.score <= 1.0
    xs, ys = [p[0] for p in line.box], [p[1] for p in line.box]
    assert 0 <= min(xs) < max(xs) <= 360 and 0 <= min(ys) < max(ys) <= 120


def test_reads_text_at_an_angle_and_small_print(reader):
    slanted, small = reader.read([label("LUNARA", angle=12), label("ORGANIC MILK", (300, 60), font_size=16)])
    assert "LUNARA" in slanted.text.upper()
    assert "ORGANIC" in small.text.upper()


def test_pictures_without_text_tiny_or_turned_read_as_nothing_not_a_crash(reader):
    blank = Image.new("RGB", (200, 200), (120, 160, 90))
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    tiny = Image.new("RGB", (3, 2), (0, 0, 0))
    turned = label("BRISA").rotate(90, expand=True)
    out = reader.read([blank, noise, tiny, turned, Image.new("L", (50, 50))])
    assert out[0].lines == [] and out[2].lines == [] and out[4].lines == []
    assert all(r.dropped == 0 for r in out)


def test_a_flood_of_lines_keeps_the_most_confident_and_is_reported():
    img = Image.new("RGB", (900, 1400), "white")
    d = ImageDraw.Draw(img)
    for row in range(40):
        d.text((10, 10 + row * 34), f"LINE {row} PRICE {row * 3} EUR", fill="black", font=_font(22))
    reader = OcrReader(cache=FeatureCache(None), max_lines=10)
    (reading,) = reader.read([img])
    assert len(reading.lines) == 10 and reading.dropped >= 20
    bad = BadRecords()
    reader.read_clips([[img]], ["flood"], bad=bad, records=["clip/flood"])
    assert [b.record for b in bad] == ["clip/flood"] and "kept the 10 most confident" in list(bad)[0].problem


def test_readings_are_cached_by_content_and_model(tmp_path):
    cache = FeatureCache(tmp_path)
    reader = OcrReader(cache=cache)
    first = reader.read([label("ALPRO")])[0]
    later = FeatureCache(tmp_path)  # another process, the same pixels
    again = OcrReader(cache=later).read([label("ALPRO")])[0]
    assert again == first and later.hits == 1 and later.misses == 0
    other = OcrReader(cache=FeatureCache(tmp_path), min_score=0.99)
    assert other.key != reader.key  # another setting that changes the output: another key


def test_a_clip_reads_its_keyframes_once_and_merges_repeated_lines(reader):
    frames = [label("YOGGI"), label("YOGGI"), Image.new("RGB", (360, 120), "white"), label("VANILJ")]
    assert keyframes(frames, 2) == [frames[0], frames[3]]
    assert keyframes(frames, 10) == frames
    (merged,) = reader.read_clips([frames], ["clip-1"])
    seen = {line.text.upper(): line.frames for line in merged.lines}
    assert seen.get("YOGGI") == 2 and seen.get("VANILJ") == 1


def test_the_faster_engine_reads_too_and_unknown_models_are_named():
    engine = build_ocr_engine("pp-ocrv6-tiny")
    lines = engine.read(label("TROPICANA", font_size=48))
    assert any("TROP" in t.upper() for t, _, _ in lines)
    with pytest.raises(ProdlensError, match="pp-ocrv6-small"):
        OcrReader("tesseract")
