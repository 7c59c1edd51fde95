"""A built-in tri-domain catalogue generated from what the installed packages ship (Pillow, PyAV, the DejaVu font
that matplotlib carries), so the demo needs no download and no shared data.

Each product is a rendered package (bottle, box, can, jar or bag) in a brand colour with a patterned label and its
brand name. It appears as:
- a product page: a clean catalogue shot on white + title + description;
- short videos (MP4): the product on a cluttered table, with camera pan and zoom, a lighting drift and a slight
  rotation; some have a title;
- live-stream clips (MP4, portrait): a host holds the product, smaller and partly occluded, with a LIVE badge,
  scrolling comments, stronger lighting changes and sensor noise.
Colours, shapes and patterns are drawn from small sets, so many products look alike: the task is not trivial.
The catalogue is written in the documented folder layout (see `prodlens.catalog.folder`).
"""
from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .. import atomic
from ..progress import progress_bar

COLOURS = {"red": (200, 40, 45), "green": (40, 150, 70), "blue": (40, 80, 190), "yellow": (235, 200, 40),
           "orange": (240, 130, 30), "purple": (120, 60, 160), "black": (35, 35, 40), "white": (235, 235, 230),
           "pink": (235, 120, 170), "teal": (30, 150, 150)}
KINDS = {
    "bottle": ["shampoo", "orange juice", "olive oil", "body lotion", "dish soap"],
    "box": ["cereal", "green tea", "crackers", "laundry powder", "chocolate cookies"],
    "can": ["cola", "tomato soup", "coffee", "energy drink", "baked beans"],
    "jar": ["strawberry jam", "honey", "face cream", "peanut butter", "pickles"],
    "bag": ["potato chips", "basmati rice", "coffee beans", "dog food", "flour"],
}
PATTERNS = ["stripes", "dots", "band", "plain", "chevron"]
VARIANTS = ["Classic", "Original", "Extra", "Light", "Organic", "Premium", "Fresh", "Family"]
SIZES = ["250 ml", "500 ml", "1 l", "200 g", "400 g", "750 g", "1 kg", "330 ml"]
SYLLABLES = ["lu", "mo", "ka", "ri", "ven", "sol", "ta", "bri", "zo", "na", "pel", "dor", "fi", "qua", "mi", "ro"]


@dataclass(frozen=True)
class ProductSpec:
    product_id: str
    brand: str
    kind: str  # package shape
    product_type: str
    colour: str
    accent: str
    pattern: str
    variant: str
    size: str

    @property
    def title(self) -> str:
        return f"{self.brand} {self.variant} {self.product_type.title()} {self.size}"

    @property
    def description(self) -> str:
        return (f"{self.brand} {self.product_type} ({self.variant.lower()}), {self.size}. Comes in a {self.colour} "
                f"{self.kind} with a {self.accent} {self.pattern} label.")


def make_products(n: int, seed: int = 0) -> list[ProductSpec]:
    rng = random.Random(seed)
    brands: list[str] = []
    while len(brands) < max(4, n // 3):  # brands are shared by several products, as in real catalogues
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice([2, 2, 3]))).capitalize()
        if name not in brands:
            brands.append(name)
    specs, seen = [], set()
    while len(specs) < n:
        kind = rng.choice(list(KINDS))
        colour, accent = rng.sample(list(COLOURS), 2)
        spec = ProductSpec("", rng.choice(brands), kind, rng.choice(KINDS[kind]), colour, accent,
                           rng.choice(PATTERNS), rng.choice(VARIANTS), rng.choice(SIZES))
        signature = (spec.brand, spec.product_type, spec.colour, spec.pattern)
        if signature in seen:
            continue
        seen.add(signature)
        pid = f"{spec.brand}-{spec.product_type.replace(' ', '-')}-{len(specs):03d}".lower()
        specs.append(ProductSpec(pid, *list(spec.__dict__.values())[1:]))
    return specs


def _font(size: int) -> ImageFont.ImageFont:
    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def render_product(spec: ProductSpec, height: int = 240) -> Image.Image:
    """The package alone on a transparent background (RGBA)."""
    w = {"bottle": 0.42, "box": 0.7, "can": 0.5, "jar": 0.62, "bag": 0.72}[spec.kind]
    width = int(height * w)
    img = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    body, accent = COLOURS[spec.colour], COLOURS[spec.accent]
    outline = tuple(max(0, c - 60) for c in body)
    if spec.kind == "bottle":
        neck = width // 3
        d.rectangle([width // 2 - neck // 2, 0, width // 2 + neck // 2, height // 5], fill=accent, outline=outline)
        d.rounded_rectangle([0, height // 6, width - 1, height - 1], radius=width // 4, fill=body, outline=outline, width=3)
        label = [4, height // 3, width - 5, int(height * 0.78)]
    elif spec.kind == "box":
        d.rectangle([0, 0, width - 1, height - 1], fill=body, outline=outline, width=3)
        d.polygon([(0, 0), (width // 6, -1), (width - 1, 0)], fill=outline)
        label = [width // 8, height // 4, width - width // 8, int(height * 0.72)]
    elif spec.kind == "can":
        d.rounded_rectangle([0, 6, width - 1, height - 7], radius=10, fill=body, outline=outline, width=3)
        d.ellipse([0, 0, width - 1, 14], fill=(190, 190, 195), outline=outline)
        label = [0, height // 4, width - 1, int(height * 0.75)]
    elif spec.kind == "jar":
        d.rectangle([width // 8, 0, width - width // 8, height // 7], fill=accent, outline=outline, width=2)
        d.rounded_rectangle([0, height // 8, width - 1, height - 1], radius=width // 6, fill=body, outline=outline, width=3)
        label = [6, height // 3, width - 7, int(height * 0.8)]
    else:  # bag
        d.polygon([(width * 0.08, 0), (width * 0.92, 0), (width - 1, height - 1), (0, height - 1)], fill=body,
                  outline=outline)
        for x in range(int(width * 0.1), int(width * 0.9), 6):
            d.line([(x, 0), (x, 8)], fill=outline)
        label = [width // 7, height // 3, width - width // 7, int(height * 0.75)]
    _draw_label(d, label, spec, body, accent)
    return img


def _draw_label(d: ImageDraw.ImageDraw, box, spec: ProductSpec, body, accent) -> None:
    x0, y0, x1, y1 = box
    d.rectangle(box, fill=(250, 248, 240))
    if spec.pattern == "stripes":
        for x in range(x0, x1, 10):
            d.rectangle([x, y0, x + 4, y1], fill=accent)
    elif spec.pattern == "dots":
        for y in range(y0 + 6, y1, 14):
            for x in range(x0 + 6, x1, 14):
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=accent)
    elif spec.pattern == "band":
        d.rectangle([x0, (y0 + y1) // 2 - 10, x1, (y0 + y1) // 2 + 10], fill=accent)
    elif spec.pattern == "chevron":
        for y in range(y0, y1, 16):
            d.line([(x0, y), ((x0 + x1) // 2, y + 8), (x1, y)], fill=accent, width=4)
    text_h = max(10, (y1 - y0) // 5)
    font = _font(text_h)
    text = spec.brand.upper()
    tw = d.textlength(text, font=font)
    while tw > (x1 - x0) - 4 and text_h > 8:
        text_h -= 1
        font = _font(text_h)
        tw = d.textlength(text, font=font)
    ink = body if spec.colour != "white" else (30, 30, 30)
    small_h = max(8, text_h * 3 // 5)  # the variant, smaller: what tells a brand's products apart on the shelf
    small, line = _font(small_h), spec.variant.upper()
    sw = d.textlength(line, font=small)
    ty = y0 + (y1 - y0) // 2 - (text_h + small_h + 4) // 2
    d.rectangle([x0, ty - 2, x1, ty + text_h + small_h + 8], fill=(250, 248, 240))
    d.text(((x0 + x1 - tw) / 2, ty), text, fill=ink, font=font)
    d.text(((x0 + x1 - sw) / 2, ty + text_h + 4), line, fill=(40, 40, 40), font=small)


def page_image(spec: ProductSpec, size: int = 320) -> Image.Image:
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    product = render_product(spec, int(size * 0.8))
    shadow = Image.new("RGBA", product.size, (0, 0, 0, 0))
    shadow.paste((0, 0, 0, 70), mask=product.getchannel("A"))
    shadow = shadow.filter(ImageFilter.GaussianBlur(6))
    x, y = (size - product.width) // 2, (size - product.height) // 2
    canvas.paste(shadow, (x + 6, y + 6), shadow)
    canvas.paste(product, (x, y), product)
    return canvas


def _clutter_background(rng: random.Random, size: tuple[int, int], others: list[ProductSpec]) -> Image.Image:
    w, h = size
    top = tuple(rng.randint(120, 230) for _ in range(3))
    bottom = tuple(int(c * 0.6) for c in top)
    grad = np.linspace(0, 1, h)[:, None, None]
    arr = (np.array(top)[None, None, :] * (1 - grad) + np.array(bottom)[None, None, :] * grad) * np.ones((h, w, 3))
    bg = Image.fromarray(arr.astype(np.uint8))
    d = ImageDraw.Draw(bg)
    for _ in range(rng.randint(6, 12)):  # random household clutter
        x, y = rng.randint(0, w), rng.randint(0, h)
        s = rng.randint(w // 12, w // 4)
        colour = tuple(rng.randint(30, 240) for _ in range(3))
        if rng.random() < 0.5:
            d.rectangle([x, y, x + s, y + s // 2], fill=colour)
        else:
            d.ellipse([x, y, x + s, y + s], fill=colour)
    for other in others:  # other products in the scene: distractors
        p = render_product(other, rng.randint(h // 5, h // 3))
        bg.paste(p, (rng.randint(0, max(1, w - p.width)), rng.randint(h // 3, max(h // 3 + 1, h - p.height))), p)
    return bg


def _apply_light_and_noise(frame: Image.Image, gain: float, tint, noise: float, rng: np.random.Generator) -> Image.Image:
    arr = np.asarray(frame, dtype=np.float32) * gain + np.asarray(tint, np.float32)
    if noise > 0:
        arr += rng.normal(0, noise, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def clip_frames(spec: ProductSpec, others: list[ProductSpec], live: bool, seed: int, n_frames: int = 24) -> list[Image.Image]:
    """Frames of a short video (square) or a live clip (portrait) showing `spec` among distractors."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    out_w, out_h = (224, 384) if live else (256, 256)
    canvas_w, canvas_h = int(out_w * 1.5), int(out_h * 1.5)
    bg = _clutter_background(rng, (canvas_w, canvas_h), others)
    product = render_product(spec, int(canvas_h * (0.3 if live else rng.uniform(0.38, 0.55))))
    angle0, angle1 = rng.uniform(-15, 15), rng.uniform(-15, 15)
    px = rng.randint(canvas_w // 4, max(canvas_w // 4, canvas_w - product.width - canvas_w // 6))
    py = rng.randint(canvas_h // 6, max(canvas_h // 6, canvas_h - product.height - canvas_h // 8))
    zoom0, zoom1 = rng.uniform(0.85, 1.0), rng.uniform(0.65, 0.85)
    gain0, gain1 = rng.uniform(0.6, 1.2), rng.uniform(0.6, 1.2) if live else rng.uniform(0.85, 1.1)
    tint = [rng.uniform(-20, 20) for _ in range(3)] if live else [0, 0, 0]
    font = _font(14)
    card_font = _font(12)
    card = (f"{spec.brand} {spec.variant}"[:20], f"{rng.randint(2, 49)}.{rng.choice(['00', '49', '99'])} EUR") \
        if live and rng.random() < 0.5 else None
    frames = []
    for i in range(n_frames):
        t = i / max(1, n_frames - 1)
        scene = bg.copy()
        if live:  # the host: head and torso behind the product, arm holding it
            d = ImageDraw.Draw(scene)
            cx = canvas_w // 2 + int(10 * math.sin(t * 6))
            d.ellipse([cx - 45, canvas_h // 6, cx + 45, canvas_h // 6 + 110], fill=(224, 172, 140))
            d.rounded_rectangle([cx - 110, canvas_h // 6 + 100, cx + 110, canvas_h], radius=40, fill=(70, 70, 90))
        rotated = product.rotate(angle0 + (angle1 - angle0) * t, expand=True, resample=Image.BICUBIC)
        bob = int(8 * math.sin(t * 2 * math.pi)) if live else 0
        scene.paste(rotated, (px + int(20 * t), py + bob), rotated)
        if live:
            d = ImageDraw.Draw(scene)
            d.ellipse([px + rotated.width - 30, py + rotated.height // 2 + bob, px + rotated.width + 10,
                       py + rotated.height // 2 + 40 + bob], fill=(224, 172, 140))  # the hand, partly occluding
        zoom = zoom0 + (zoom1 - zoom0) * t  # camera zoom and pan: a moving crop window
        cw, ch = int(canvas_w * zoom), int(canvas_h * zoom)
        cx0 = int((canvas_w - cw) * (0.2 + 0.6 * t))
        cy0 = int((canvas_h - ch) * 0.5)
        frame = scene.crop((cx0, cy0, cx0 + cw, cy0 + ch)).resize((out_w, out_h), Image.BILINEAR)
        if live and card:  # the stream's product card: the name and a price, in small print
            d = ImageDraw.Draw(frame)
            d.rounded_rectangle([out_w - 150, 40, out_w - 6, 82], radius=6, fill=(255, 255, 255))
            d.text((out_w - 144, 44), card[0], fill=(20, 20, 20), font=card_font)
            d.text((out_w - 144, 62), card[1], fill=(200, 30, 40), font=card_font)
        if live:
            d = ImageDraw.Draw(frame)
            d.rounded_rectangle([8, 8, 58, 28], radius=4, fill=(230, 30, 50))
            d.text((16, 10), "LIVE", fill=(255, 255, 255), font=font)
            for j in range(3):
                y = out_h - 90 + j * 24 - int(t * 20)
                d.rounded_rectangle([8, y, out_w - 40, y + 20], radius=6, fill=(0, 0, 0))
                d.text((14, y + 2), f"user{(seed + j) % 97}: {rng.choice(['wow', 'price?', 'link pls', 'nice'])}",
                       fill=(255, 255, 255), font=font)
        gain = gain0 + (gain1 - gain0) * t
        frames.append(_apply_light_and_noise(frame, gain, tint, 9.0 if live else 3.0, nrng))
    return frames


def write_mp4(frames: list[Image.Image], path: Path, fps: int = 8, audio: np.ndarray | None = None,
              audio_rate: int = 22050) -> None:
    """Encode frames as H.264 MP4 with PyAV (plus an AAC track from mono float `audio`), atomically."""
    with atomic.atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height = frames[0].size
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "26", "preset": "veryfast"}
            sound = container.add_stream("aac", rate=audio_rate) if audio is not None else None
            if sound is not None:
                sound.layout = "mono"
            for img in frames:
                for packet in stream.encode(av.VideoFrame.from_image(img)):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
            if sound is not None:
                data = np.asarray(audio, dtype=np.float32)[None, :]
                for start in range(0, data.shape[1], 1024):
                    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, start:start + 1024]),
                                                       format="fltp", layout="mono")
                    frame.sample_rate = audio_rate
                    for packet in sound.encode(frame):
                        container.mux(packet)
                for packet in sound.encode():
                    container.mux(packet)


GREETINGS = ["hi everyone, welcome back to the live", "hello hello, good evening friends", "hey guys, we are live",
             "ok ok, let's start"]
OFF_TOPIC = ["my cat is sleeping on the sofa again", "it is raining so much today", "did you see the game yesterday",
             "I had pizza for lunch"]
SIGN_OFF = ["please follow and like", "the link is below, see you tomorrow", "thanks for watching",
            "don't forget to subscribe"]


FILLERS = ["um", "uh", "you know", "like", "so yeah", "okay"]
PRICES = ["only {a} ninety nine today", "it was {a} dollars but now {b} dollars", "buy two get one free today",
          "{a} percent off with the code in the comments"]
COMMENTS = ["someone asks if it ships abroad, yes it does", "anna says she has it already", "hi mark, thanks for the gift",
            "people ask about delivery, three days"]


def host_chatter(spec: ProductSpec, other: ProductSpec, rng: random.Random, noisy: bool = False) -> str:
    """What a live host says: greeting, the product (brand, type, a detail), chatter, another product, sign-off.
    `noisy` adds what real streams add: fillers, prices and deals, comments read aloud, a second product named
    with its brand, and more off-topic talk, so the product is a small part of the speech."""
    detail = rng.choice([f"it is {spec.variant.lower()}", f"{spec.size}", f"the {spec.colour} one"])
    pitch = rng.choice([f"this is the {spec.brand} {spec.product_type}, {detail}",
                        f"today I show you {spec.brand} {spec.product_type}, {detail}",
                        f"look at this {spec.product_type} from {spec.brand}, {detail}"])
    if not noisy:
        return ". ".join([rng.choice(GREETINGS), pitch, rng.choice(OFF_TOPIC),
                          f"tomorrow maybe the {other.product_type}", rng.choice(SIGN_OFF)]) + "."
    numbers = ["five", "nine", "twelve", "twenty", "thirty"]
    price = rng.choice(PRICES).format(a=rng.choice(numbers), b=rng.choice(numbers))
    parts = [rng.choice(GREETINGS), rng.choice(OFF_TOPIC), f"{rng.choice(FILLERS)} {pitch}", price,
             rng.choice(COMMENTS), f"yesterday I tried the {other.brand} {other.product_type} too, {rng.choice(FILLERS)}",
             rng.choice(OFF_TOPIC), rng.choice(SIGN_OFF)]
    return ". ".join(parts) + "."


def spoken_attack(target: ProductSpec, rng: random.Random) -> str:
    """What a seller says to move a clip towards another product's searches: a sentence in one of the attack
    phrasing families the shipped injection detector never saw, or a plain lie ("this is the ..."), naming
    `target`."""
    from ..text.corpus import ATTACK_EN, HELD_OUT_FAMILIES

    templates = [t for family in sorted(HELD_OUT_FAMILIES & set(ATTACK_EN)) for t in ATTACK_EN[family]]
    templates += ["this is the {B} {P}", "the product is a {B} {P}", "it is a {P} by {B}"]
    claim = rng.choice(["the product is a {B} {P}", "this is the {B} {P}", "the item is the {B} {P}"])
    return rng.choice(templates).replace("{C}", claim).format(B=target.brand, P=target.product_type)


def speak(text: str, voice_seed: int = 0, voice: str | None = None) -> tuple[np.ndarray, int] | None:
    """Synthetic speech from espeak-ng (a Debian package), or None when it is not installed. `voice`: an espeak-ng
    voice ("cmn": Mandarin); default one of five English voices, by `voice_seed`."""
    import shutil
    import subprocess
    import tempfile
    import wave

    if shutil.which("espeak-ng") is None:
        return None
    voices = ["en-us", "en", "en-us+m3", "en+f3", "en-us+f2"]
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice or voices[voice_seed % len(voices)], "-s", str(150 + voice_seed % 4 * 10),
                        "-w", f.name, text], check=True, capture_output=True)
        with wave.open(f.name) as w:
            rate = w.getframerate()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
    return data, rate


VIDEO_TITLES = ["{brand} {ptype} review", "unboxing my new {ptype}", "{brand} haul!", "what I bought this week",
                "is {brand} worth it?", "my favourite {ptype}"]


def generate_demo_catalog(out_dir: str | Path, n_products: int = 36, videos_per_product: int = 2,
                          lives_per_product: int = 2, seed: int = 0, progress: bool = True,
                          test_clip: int | None = None, speech: bool = False,
                          speech_domains: tuple[str, ...] = ("live",), noisy_speech: bool = False,
                          attack_every: int = 0) -> Path:
    """Write the demo catalogue (folder layout) under `out_dir`; returns it. Deterministic for a given seed.
    With `test_clip`, clip number `test_clip` of each product and domain goes to the "test" split (splits.csv)
    and the other clips to "train"; product pages belong to both. With `speech` (and espeak-ng installed), the clips
    of `speech_domains` get a host talking about the product among chatter (`noisy_speech`: much more chatter),
    muxed into the MP4. `attack_every` = n > 0: every n-th held-out clip's host also says, once, an attack naming
    another product of the catalogue (`spoken_attack`); every other clip looks and sounds as without it."""
    out = Path(out_dir)
    specs = make_products(n_products, seed)
    rng = random.Random(seed + 1)
    attack_rng = random.Random(seed + 2)  # its own stream: attacks change nothing else in the catalogue
    held_out, attacks = 0, ["sample_id,target_product,sentence"]
    total = len(specs) * (1 + videos_per_product + lives_per_product)
    with progress_bar(total, "generating demo catalogue", enabled=progress) as advance:
        rows = []
        for k, spec in enumerate(specs):
            rows.append({"product_id": spec.product_id, "title": spec.title, "category": spec.kind,
                         "description": spec.description})
            page_dir = out / "page" / spec.product_id
            page_dir.mkdir(parents=True, exist_ok=True)
            with atomic.atomic_path(page_dir / "main.jpg") as tmp:
                page_image(spec).save(tmp, format="JPEG", quality=90)
            atomic.write_text(page_dir / "main.txt", f"{spec.title}. {spec.description}")
            advance(1)
            for domain, count in (("video", videos_per_product), ("live", lives_per_product)):
                for j in range(count):
                    others = rng.sample([s for s in specs if s is not spec], k=min(2, len(specs) - 1))
                    frames = clip_frames(spec, others, live=domain == "live", seed=seed * 100_000 + k * 100 + j * 10 +
                                         (1 if domain == "live" else 0))
                    clip_dir = out / domain / spec.product_id
                    clip_dir.mkdir(parents=True, exist_ok=True)
                    speaks = speech and domain in speech_domains
                    said = host_chatter(spec, others[0], rng, noisy_speech) if speaks else ""
                    if speaks and j == test_clip:
                        held_out += 1  # counted per product and domain in turn, so attacks fall on both domains
                        if attack_every and (k + held_out) % attack_every == 0:
                            target = attack_rng.choice([s for s in specs if s not in (spec, *others)])
                            parts = said.split(". ")
                            attack = spoken_attack(target, attack_rng)
                            parts.insert(min(3, len(parts) - 1), attack)
                            said = ". ".join(parts)
                            attacks.append(f"{domain}/{spec.product_id}/{domain[0]}{j},{target.product_id},{attack}")
                    voice = speak(said, k + j) if speaks else None
                    write_mp4(frames, clip_dir / f"{domain[0]}{j}.mp4",
                              audio=voice[0] if voice else None, audio_rate=voice[1] if voice else 22050)
                    if domain == "video" and rng.random() < 0.6:
                        title = rng.choice(VIDEO_TITLES).format(brand=spec.brand, ptype=spec.product_type)
                        atomic.write_text(clip_dir / f"{domain[0]}{j}.txt", title)
                    advance(1)
        if test_clip is not None:
            split_rows = ["sample_id,split"] + [
                f"{domain}/{spec.product_id}/{domain[0]}{j},{'test' if j == test_clip else 'train'}"
                for spec in specs for domain, count in (("video", videos_per_product), ("live", lives_per_product))
                for j in range(count)]
            atomic.write_text(out / "splits.csv", "\n".join(split_rows) + "\n")
        if len(attacks) > 1:
            atomic.write_text(out / "attacks.csv", "\n".join(attacks) + "\n")
        with atomic.atomic_path(out / "products.csv") as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=["product_id", "title", "category", "description"])
                writer.writeheader()
                writer.writerows(rows)
    return out
