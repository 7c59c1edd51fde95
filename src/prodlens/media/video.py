"""Video decoding with PyAV: N frames sampled uniformly over the clip, broken frames skipped; audio to 16 kHz mono."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

from ..errors import MediaError
from .config import DEFAULT_FRAMES

SEEK_THRESHOLD_SECONDS = 120.0  # shorter clips are decoded straight through; longer ones are sampled by seeking


def uniform_positions(n_total: int, n: int) -> list[int]:
    """Indices of `n` frames spread evenly over `n_total`, each at the centre of its segment (as COPE samples)."""
    if n_total <= 0 or n <= 0:
        return []
    if n >= n_total:
        return list(range(n_total))
    step = n_total / n
    return [min(n_total - 1, int((2 * i + 1) * step / 2)) for i in range(n)]




def sample_frames(path: str | Path, n: int = DEFAULT_FRAMES, record: str | None = None) -> list[Image.Image]:
    """Decode `n` RGB frames spread uniformly over the video; frames that fail to decode are skipped."""
    path = Path(path)
    record = record or str(path)
    container = _open(path, record)
    try:
        if not container.streams.video:
            raise MediaError(record, f"{path.name} has no video stream")
        stream = container.streams.video[0]
        duration = _duration_seconds(container, stream)
        if duration is not None and duration > SEEK_THRESHOLD_SECONDS:
            frames = _sample_by_seeking(container, stream, duration, n)
        else:
            frames = _sample_sequential(container, stream, n)
    finally:
        container.close()
    if not frames:
        raise MediaError(record, f"{path.name}: no decodable video frame")
    return frames


def _open(path: Path, record: str):
    if not path.exists():
        raise MediaError(record, f"video file not found: {path}")
    if path.stat().st_size == 0:
        raise MediaError(record, f"{path.name} is empty (0 bytes)")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise MediaError(record, f"{path.name} is not a readable video ({e})") from None


def _duration_seconds(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _decoded_frames(container, stream):
    """Yield decoded frames; packets that fail to decode are skipped rather than ending the clip."""
    for packet in container.demux(stream):
        try:
            for frame in packet.decode():
                yield frame
        except (av.error.InvalidDataError, av.error.FFmpegError, ValueError):
            continue


def _sample_sequential(container, stream, n: int) -> list[Image.Image]:
    """One decoding pass; only the selected frames are converted to images, so memory stays at n frames."""
    n_total = stream.frames or _count_packets(container, stream)
    targets = set(uniform_positions(n_total, n))
    out: list[Image.Image] = []
    index = 0
    try:
        for frame in _decoded_frames(container, stream):
            if index in targets:
                try:
                    out.append(frame.to_image().convert("RGB"))
                except (ValueError, av.error.FFmpegError):
                    targets.add(index + 1)  # take the next good frame instead
            index += 1
            if len(out) >= n:
                break
    except (av.error.FFmpegError, OSError):
        pass  # a truncated file ends early; the frames decoded so far are kept
    return out


def _count_packets(container, stream) -> int:
    """Frame count when the header does not say: count video packets (no decoding), then rewind."""
    count = sum(1 for p in container.demux(stream) if p.size)
    container.seek(0, stream=stream)
    return count


def _sample_by_seeking(container, stream, duration: float, n: int) -> list[Image.Image]:
    out = []
    for i in range(n):
        t = (2 * i + 1) * duration / (2 * n)
        try:
            container.seek(int(t / stream.time_base), stream=stream, backward=True, any_frame=False)
            for frame in _decoded_frames(container, stream):
                if frame.time is None or frame.time >= t - 1e-3:
                    out.append(frame.to_image().convert("RGB"))
                    break
        except (av.error.FFmpegError, OSError, ValueError):
            continue
    return out


def video_info(path: str | Path, record: str | None = None) -> dict:
    path = Path(path)
    record = record or str(path)
    container = _open(path, record)
    try:
        v = container.streams.video[0] if container.streams.video else None
        a = container.streams.audio[0] if container.streams.audio else None
        return {
            "duration": _duration_seconds(container, v) if v else (container.duration or 0) / av.time_base,
            "width": v.codec_context.width if v else None, "height": v.codec_context.height if v else None,
            "fps": float(v.average_rate) if v and v.average_rate else None,
            "frames": v.frames if v else 0, "has_audio": a is not None,
            "audio_rate": a.rate if a else None,
        }
    finally:
        container.close()


def extract_audio(path: str | Path, sample_rate: int = 16_000, max_seconds: float | None = None,
                  record: str | None = None) -> np.ndarray:
    """The audio track as float32 mono at `sample_rate` Hz (for ASR). Raises MediaError if there is none."""
    path = Path(path)
    record = record or str(path)
    container = _open(path, record)
    try:
        if not container.streams.audio:
            raise MediaError(record, f"{path.name} has no audio track")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        total = 0
        limit = int(max_seconds * sample_rate) if max_seconds else None
        for packet in container.demux(stream):
            try:
                decoded = packet.decode()
            except (av.error.InvalidDataError, av.error.FFmpegError, ValueError):
                continue
            for frame in decoded:
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += chunk.size
            if limit and total >= limit:
                break
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    finally:
        container.close()
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if limit:
        audio = audio[:limit]
    if audio.size == 0:
        raise MediaError(record, f"{path.name}: audio track decodes to no samples")
    return audio
