"""Shared fixtures: real media files the tests write themselves, and the shared reference data when present."""
from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"shared reference data not found at {path} (clone prodlens beside ../shared to run this test)")
    return path


@pytest.fixture
def grocery_root() -> Path:
    return shared_dataset("grocery-store")


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


@pytest.fixture(scope="session")
def embedder():
    """One embedder with real pretrained encoders for the whole session (loading them takes seconds)."""
    from prodlens.embed import EmbedConfig, FeatureCache, ProductEmbedder

    return ProductEmbedder(EmbedConfig(frames=4, batch_size=16), FeatureCache(None))


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
