"""Helpers shared by the tests: real media files written on the spot (images, MP4s, speech), tiny catalogues in
each layout, ROPE-format rows as the spec shows them, synthetic embeddings, readiness waits, and the shared
reference data when it is present."""
from __future__ import annotations

import contextlib

import os
import random
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from prodlens.embed import Embeddings


SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"shared reference data not found at {path} (clone prodlens beside ../shared to run this test)")
    return path


def require(available: bool, what: str, install: str) -> None:
    """Skip a test whose engine or tool is missing on this machine, but fail it in CI: `make test` installs all of
    them, so a missing one there is a broken setup that must not pass as a skip."""
    if available:
        return
    message = f"{what} is not installed ({install})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; `make test` installs it, so in CI its absence is a setup failure")
    pytest.skip(message)


def importable(module: str) -> bool:
    import importlib

    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False


def wait_until_serving(url: str, process, log: Path | None = None) -> None:
    """Poll `url` until it answers 200; fail at once if `process` exits first. There is no wall-clock budget: on a
    busy machine a server only comes up later (the CI run's own time limit bounds a hang)."""
    import time
    import urllib.error
    import urllib.request

    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                if response.status == 200:
                    return
        except (urllib.error.HTTPError, OSError):  # not listening yet, or 503 while loading
            pass
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
            pytest.fail(f"the server exited with code {process.returncode} before {url} answered\n{tail}")
        time.sleep(0.3)


def free_port() -> int:
    """A loopback port nothing listens on now, for servers the tests start."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app):
    """An ASGI app served by uvicorn on a free loopback port in a thread; yields its base URL once it listens."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # readiness, however busy the machine is
        assert thread.is_alive(), "the server thread stopped before it started listening"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def solid_image(colour=(200, 30, 30), size=(64, 48)) -> Image.Image:
    return Image.new("RGB", size, colour)


def write_video(path: Path, colours: list[tuple[int, int, int]], size=(64, 64), fps: int = 10,
                audio_seconds: float = 0.0, codec: str = "libx264", audio: np.ndarray | None = None,
                audio_rate: int = 44100, faststart: bool = False) -> Path:
    """An MP4 whose i-th frame is a solid `colours[i]`; optional audio: a sine tone of `audio_seconds`, or the
    mono float samples `audio` at `audio_rate`. `faststart` puts the index (moov) before the media, as streaming
    sites serve MP4s, so a file cut short still has its index."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        samples = audio
        audio = None
        if audio_seconds or samples is not None:
            audio = container.add_stream("aac", rate=audio_rate)
            audio.layout = "stereo"
        for c in colours:
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), c, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None:
            sr = audio_rate
            if samples is None:
                t = np.arange(int(audio_seconds * sr)) / sr
                samples = 0.3 * np.sin(2 * np.pi * 440 * t)
            tone = np.asarray(samples, dtype=np.float32)
            n = tone.size
            stereo = np.stack([tone, tone])
            for start in range(0, n, 1024):
                chunk = np.ascontiguousarray(stereo[:, start:start + 1024])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate = sr
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
    return path


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    with av.open(str(path), mode="w", format="mp4") as container:
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        n = int(seconds * 16000)
        data = (0.2 * np.sin(np.arange(n) / 5)).astype(np.float32)[None, :]
        for start in range(0, n, 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, start:start + 1024]), format="fltp",
                                               layout="mono")
            frame.sample_rate = 16000
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return path


RAINBOW = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (128, 128, 128),
           (255, 128, 0), (0, 0, 0), (255, 255, 255)]


def speak(text: str, path: Path) -> tuple[np.ndarray, int]:
    """Real synthetic speech from espeak-ng (Debian package), as float samples and their rate."""
    import shutil
    import subprocess
    import wave

    require(shutil.which("espeak-ng") is not None, "espeak-ng", "apt-get install espeak-ng; `make test` does as root")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True, capture_output=True)
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
    return data, rate


def tiny_hf_model(path, kind: str = "vit", layers: int = 3) -> str:
    """A randomly initialised vision model of `kind`, saved like a hub checkpoint, with its image processor."""
    from transformers import CLIPImageProcessor, ViTImageProcessor

    if kind == "vit":
        from transformers import ViTConfig, ViTModel

        ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=37,
                           image_size=32, patch_size=8)).save_pretrained(path)
    elif kind == "dinov2":
        from transformers import Dinov2Config, Dinov2Model

        Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, mlp_ratio=2,
                                 image_size=32, patch_size=8)).save_pretrained(path)
    elif kind == "clip":
        from transformers import CLIPConfig, CLIPModel

        config = CLIPConfig(text_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                                         "intermediate_size": 20, "vocab_size": 99},
                            vision_config={"hidden_size": 32, "num_hidden_layers": layers, "num_attention_heads": 2,
                                           "intermediate_size": 37, "image_size": 32, "patch_size": 8},
                            projection_dim=24)
        CLIPModel(config).save_pretrained(path)
    processor = CLIPImageProcessor if kind == "clip" else ViTImageProcessor
    size = {"shortest_edge": 32} if kind == "clip" else {"height": 32, "width": 32}
    extra = {"crop_size": {"height": 32, "width": 32}} if kind == "clip" else {}
    processor(size=size, **extra).save_pretrained(path)
    return f"hf:{path}"

# -- folder layout ---------------------------------------------------------------------------------------------


def make_folder_catalog(root):
    (root / "page" / "p1").mkdir(parents=True)
    (root / "page" / "p2").mkdir(parents=True)
    solid_image().save(root / "page" / "p1" / "main.jpg")
    (root / "page" / "p1" / "main.txt").write_text("Red Shampoo. A red bottle of shampoo.")
    solid_image((0, 0, 255)).save(root / "page" / "p2" / "main.png")
    (root / "page" / "p2" / "main.txt").write_bytes(b"caf\xe9 latte")  # latin-1, not UTF-8
    (root / "video" / "p1").mkdir(parents=True)
    write_video(root / "video" / "p1" / "v0.mp4", RAINBOW[:4])
    (root / "video" / "p1" / "v0.asr.txt").write_text("hi everyone today the red shampoo")
    frames = root / "live" / "p2" / "clip1"
    frames.mkdir(parents=True)
    for i in range(3):
        solid_image(RAINBOW[i]).save(frames / f"{i:03d}.jpg")
    (root / "live" / "p2" / "notes.xyz").write_text("?")
    (root / "products.csv").write_text("product_id,title,category,description\np1,Red Shampoo,hair,\np2,Blue Tea,drinks,\n")
    (root / "splits.csv").write_text("sample_id,split\nlive/p2/clip1,test\n")
    return root

# -- Grocery Store layout --------------------------------------------------------------------------------------


def make_grocery(root, with_bad_rows=True):
    rows = ["Class Name (str),Class ID (int),Coarse Class Name (str),Coarse Class ID (int),Iconic Image Path (str),"
            "Product Description Path (str)"]
    for i, (name, coarse) in enumerate([("Granny-Smith", "Apple"), ("Banana", "Banana"), ("Oatly-Oat-Milk", "Oat-Milk")]):
        d = root / "iconic-images-and-descriptions" / coarse / name
        d.mkdir(parents=True)
        solid_image(RAINBOW[i], (96, 96)).save(d / f"{name}_Iconic.jpg")
        (d / f"{name}_Description.txt").write_text(f"The {name.replace('-', ' ')} is a product.")
        rel = f"/iconic-images-and-descriptions/{coarse}/{name}"
        rows.append(f"{name},{i},{coarse},{i},{rel}/{name}_Iconic.jpg,{rel}/{name}_Description.txt")
        for split in ("train", "test"):
            sd = root / split / coarse / name
            sd.mkdir(parents=True)
            for j in range(2):
                solid_image(RAINBOW[i], (80, 60)).save(sd / f"{name}_{j:03d}.jpg")
    (root / "classes.csv").write_text("\n".join(rows) + "\n")
    for split in ("train", "test"):
        lines = [f"{split}/{c}/{n}/{n}_{j:03d}.jpg, {i}, {i}" for i, (n, c) in
                 enumerate([("Granny-Smith", "Apple"), ("Banana", "Banana"), ("Oatly-Oat-Milk", "Oat-Milk")])
                 for j in range(2)]
        if with_bad_rows and split == "test":
            lines += ["test/Apple/x.jpg, 99, 0", "just-one-field"]
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


URL = "https://js-ad.a.yximgs.com/bs2/ad-material-video/"

# (product, page) ; page → title, image
PAGES = [("99721", "7", "简约西装外套", "eae32f52-2a9a-11ee-a32e-507c6f3c3e56.jpg"),
         ("99721", "1366457", "空", "dfc3f0ca-2a9a-11ee-afd0-507c6f3c3e56.jpg"),
         ("26140", "728", "碧根果, 每日坚果 500g", "c71b1f2e-2a9a-11ee-a32e-507c6f3c3e56.jpg")]

# (product, video) ; video → ASR, frames as (frame number, name), in time order
VIDEOS = [("26140", "3179594", "不买亏大了,碧根果才1元,限时限量速抢",
           [(0, "6c67b8b0-2c83-11ee-8e82-b8cef63cdeda.jpg"), (120, "6c67b8b1-2c83-11ee-8e82-b8cef63cdeda.jpg"),
            (240, "6c67b8b2-2c83-11ee-8e82-b8cef63cdeda.jpg"), (1105, "6c67b8b3-2c83-11ee-8e82-b8cef63cdeda.jpg")]),
          ("99721", "2830227", "空", [(30, "7a000001-2c83-11ee-8e82-b8cef63cdeda.jpg"),
                                     (90, "7a000002-2c83-11ee-8e82-b8cef63cdeda.jpg")])]

# (product, live clip) ; clip → ASR, frames as (timestamp ms, name)
LIVES = [("99721", "2240805", "内里是加绒加棉加厚咱这个衣服, 宝宝们",
          [(1668122889829, "08318640-2c84-11ee-87b6-043f72c2ce50.jpg"),
           (1668122890829, "08318641-2c84-11ee-87b6-043f72c2ce50.jpg"),
           (1668122899829, "08318642-2c84-11ee-87b6-043f72c2ce50.jpg")]),
         ("26140", "24", "空", [(1668122000000, "09000001-2c84-11ee-87b6-043f72c2ce50.jpg"),
                               (1668122005000, "09000002-2c84-11ee-87b6-043f72c2ce50.jpg")])]


def _write_shuffled(path, rows, rng):
    rows = list(rows)
    rng.shuffle(rows)  # ROPE's files are not in time (or any) order
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")


def write_spec_fixture(root, extra=None, seed=0):
    """The spec's rows: `product, sample` pairs; `id, text` with commas inside and 空; `id, number, name` frames;
    two spaces after the comma in the live ASR file; a URL where a bare name is usual."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    _write_shuffled(root / "training_product_pages_pair.txt", [f"{p}, {s}" for p, s, _, _ in PAGES], rng)
    _write_shuffled(root / "training_page_titles.txt", [f"{s}, {t}" for _, s, t, _ in PAGES], rng)
    _write_shuffled(root / "training_page_images.txt",
           [f"{s}, {URL + n if i == 0 else n}" for i, (_, s, _, n) in enumerate(PAGES)], rng)
    _write_shuffled(root / "training_product_videos_pair.txt", [f"{p}, {s}" for p, s, _, _ in VIDEOS], rng)
    _write_shuffled(root / "training_video_asrs.txt", [f"{s}, {t}" for _, s, t, _ in VIDEOS], rng)
    _write_shuffled(root / "training_video_frames.txt", [f"{s}, {k}, {n}" for _, s, _, fr in VIDEOS for k, n in fr], rng)
    _write_shuffled(root / "training_product_lives_pair.txt", [f"{p}, {s}" for p, s, _, _ in LIVES], rng)
    _write_shuffled(root / "training_live_asrs.txt", [f"{s},  {t}" for _, s, t, _ in LIVES], rng)
    _write_shuffled(root / "training_live_clips.txt", [f"{s}, {k}, {n}" for _, s, _, fr in LIVES for k, n in fr], rng)
    # the test split: same file names with its own prefix; ids restart, so page 7 exists in both splits
    _write_shuffled(root / "test_product_pages_pair.txt", ["5, 7"], rng)
    _write_shuffled(root / "test_page_titles.txt", ["7, 测试商品"], rng)
    _write_shuffled(root / "test_page_images.txt", ["7, 0000aaaa-2a9a-11ee-a32e-507c6f3c3e56.jpg"], rng)
    for name, rows in (extra or {}).items():
        with open(root / name, "a", encoding="utf-8") as f:
            f.write("".join(r + "\n" for r in rows))
    return root


def _unit(rows):
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def synthetic_embeddings(rng, n_products=5, per_domain=3, noise=0.3):
    centres = rng.normal(size=(n_products, 16))
    ids, pids, doms, vecs = [], [], [], []
    for d in ("page", "video", "live"):
        for p in range(n_products):
            for k in range(per_domain if d != "page" else 1):
                ids.append(f"{d}/{p}/{k}")
                pids.append(f"p{p}")
                doms.append(d)
                vecs.append(centres[p] + noise * rng.normal(size=16))
    return Embeddings(ids, pids, doms, [None] * len(ids), _unit(vecs), {"model": "toy"})


PITCH = ("hi guys welcome back to the live so this is the lumo organic shampoo five hundred ml it smells like "
         "green apple and it is great for dry hair. please follow and like. only nine ninety nine today")


WORDS = ["oat", "milk", "Crème", "brûlée", "中文", "organic", "apple", "juice", "red", "lipstick", "toner", "ÅÄÖ",
         "x-large", "50ml", "pack"]


def messy_table(rng: random.Random, columns: list[str], tab: bool, rows: int = 60):
    """A CSV/TSV file of `rows` data rows whose first column is a key, built to break loaders: BOM, CRLF, empty
    fields, all-empty rows, blank keys, repeated keys, quotes, tabs inside fields, a 1 MB field, invalid UTF-8.
    Returns (file bytes, cases): each case a dict with `line` (where the row starts), `kind` and `values` (the
    fields as written, decoded). Kinds: good, dup (a key seen before), empty (every field after the key empty),
    blank-key (all-empty rows too), tab-inside (TSV: one field too many), bad-utf8."""
    sep = "\t" if tab else ","
    newline = "\r\n" if rng.random() < 0.5 else "\n"
    bom = rng.random() < 0.5

    def text() -> str:
        words = rng.sample(WORDS, rng.randint(1, 4))
        if not tab and rng.random() < 0.3:
            words.insert(1, rng.choice(['"quoted"', "a, b", "tab\there", "two\nlines"]))
        if tab and rng.random() < 0.2:
            words.insert(1, '"literal quotes"')
        return " ".join(words)

    def cell(value: str) -> str:
        if tab or not any(c in value for c in ',"\n\t'):
            return value
        return '"' + value.replace('"', '""') + '"'

    out = [(bom and "\ufeff" or "") + sep.join(columns) + newline]
    cases, keys, line = [], [], 2
    kinds = ["good"] * 6 + ["dup", "empty", "blank-key", "bad-utf8", "all-empty"] + (["tab-inside"] if tab else [])
    long_at = rng.randrange(rows)
    for n in range(rows):
        kind = rng.choice(kinds) if n != long_at else "good"
        if kind == "dup" and not keys:
            kind = "good"
        key = rng.choice(keys) if kind == "dup" else f"K{n}-{rng.choice(WORDS)}"
        values = [key] + [text() for _ in columns[1:]]
        if n == long_at:
            values[-1] = "long " + "y" * (1 << 20)
        if kind == "empty":
            values[1:] = [""] * (len(columns) - 1)
        if kind in ("blank-key", "all-empty"):
            values[0] = rng.choice(["", "  "])
            if kind == "all-empty":
                values[1:] = [""] * (len(columns) - 1)
                kind = "blank-key"
        raw = sep.join(cell(v) for v in values)
        if kind == "tab-inside":
            raw = sep.join([values[0], values[1] + "\tstray"] + values[2:])
        data = raw.encode("utf-8")
        if kind == "bad-utf8":
            data = data + b" \xff\xfe broken"
        out.append(data.decode("utf-8", errors="surrogateescape") + newline)
        if kind in ("good", "dup", "empty") and values[0].strip():
            keys.append(values[0])
        cases.append({"line": line, "kind": kind, "values": values})
        line += raw.count("\n") + 1
    blob = "".join(out).encode("utf-8", errors="surrogateescape")
    return blob, cases


def clean(value: str) -> str:
    """A field as the loaders clean it: whitespace runs to one space, trimmed."""
    return " ".join(value.split())
