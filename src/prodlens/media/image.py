"""Image decoding: Pillow, EXIF orientation applied, every colour mode turned into 8-bit RGB."""
from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps, UnidentifiedImageError

from ..errors import MediaError

MAX_PIXELS = 80_000_000  # refuse decompression bombs well before they eat the machine's memory
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency is composited on white (catalogue images are cut-outs)."""
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v / 256).convert("L")  # 16-bit greyscale → 8-bit
    if img.mode == "F":
        img = img.convert("L")
    return img.convert("RGB")  # CMYK, YCbCr, L, 1, LAB, HSV


def load_image(path: str | Path, record: str | None = None) -> Image.Image:
    """Decode an image file fully (so truncation is caught here, not later) and return it as upright RGB."""
    path = Path(path)
    record = record or str(path)
    if not path.exists():
        raise MediaError(record, f"image file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MediaError(record, f"cannot read {path}: {e.strerror or e}") from None
    return decode_image(data, record, name=path.name)


def decode_image(data: bytes, record: str, name: str = "image") -> Image.Image:
    if not data:
        raise MediaError(record, f"{name} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            img.load()  # raises on truncated / corrupt data
            img = ImageOps.exif_transpose(img)
    except UnidentifiedImageError:
        raise MediaError(record, f"{name} is not a recognisable image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError(record, f"{name} is too large (over {MAX_PIXELS} pixels)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise MediaError(record, f"{name} is corrupt or truncated ({e})") from None
    if img.width < 1 or img.height < 1:
        raise MediaError(record, f"{name} has no pixels")
    return to_rgb(img)


def random_view(img: Image.Image, rng, scale: tuple[float, float] = (0.64, 1.0),
                ratio: tuple[float, float] = (3 / 4, 4 / 3), jitter: float = 0.3) -> Image.Image:
    """A random training look at an image: a crop of `scale` of its area with aspect ratio in `ratio`
    (RandomResizedCrop's draw; COPE uses scale 0.64–1), mirrored half the time, and brightness, contrast and
    saturation each scaled by a factor in [1 - jitter, 1 + jitter]. `rng` is a numpy Generator, so a view is
    reproducible from its seed. The caller resizes to the network's input."""
    w, h = img.size
    for _ in range(10):
        area = w * h * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            break
    else:  # a very elongated image: the largest centred crop of the drawn area
        cw, ch = min(w, max(1, round(math.sqrt(w * h * scale[1])))), min(h, max(1, round(math.sqrt(w * h * scale[1]))))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = img.crop((x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    if jitter > 0:
        for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            out = enhance(out).enhance(float(rng.uniform(1 - jitter, 1 + jitter)))
    return out
