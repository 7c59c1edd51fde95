import io

import numpy as np
import pytest
from PIL import Image

from prodlens.errors import MediaError
from prodlens.media import decode_image, load_image


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = _save(img, tmp_path / "rot.jpg", exif=exif.tobytes())
    assert load_image(path).size == (20, 40)


@pytest.mark.parametrize("mode", ["CMYK", "L", "P", "RGBA", "LA", "I;16", "1"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    base = Image.new("RGB", (16, 16), (10, 200, 30))
    if mode == "I;16":
        img = Image.fromarray(np.full((16, 16), 40000, np.uint16))
        path = _save(img, tmp_path / "x.png")
    else:
        img = base.convert(mode)
        path = _save(img, tmp_path / ("x.tif" if mode == "CMYK" else "x.png"))
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (16, 16)


def test_transparent_pixels_become_white(tmp_path):
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    out = load_image(_save(img, tmp_path / "t.png"))
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_truncated_jpeg_names_the_record(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buf, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(MediaError) as info:
        load_image(path, record="page/p1")
    assert info.value.record == "page/p1" and "truncated" in info.value.problem


@pytest.mark.parametrize("data, words", [(b"", "empty"), (b"this is not an image", "not a recognisable image")])
def test_bad_bytes(data, words):
    with pytest.raises(MediaError, match=words):
        decode_image(data, "rec")


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="not found"):
        load_image(tmp_path / "nope.jpg", "rec")
