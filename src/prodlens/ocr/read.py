"""Reading pictures: images and a clip's keyframes → text lines with boxes and confidences, cached by picture content
and model identity, read by a few single-threaded engines side by side, merged across a clip's frames."""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import threading
import unicodedata
from dataclasses import asdict, dataclass, field
from importlib import metadata

from PIL import Image

from ..cache import FeatureCache, model_key
from ..errors import BadRecords
from ..media import uniform_positions
from ..progress import progress_bar
from .config import DEFAULT_OCR_MODEL, MAX_LINES, MIN_SCORE
from .engines import OCR_ENGINES, OCR_PACKAGES, build_ocr_engine


@dataclass
class TextLine:
    text: str
    score: float  # the recogniser's confidence, 0..1
    box: list[list[float]]  # four (x, y) corners in the picture's pixels (of its first frame, in a clip)
    frames: int = 1  # how many of the frames read show this line


@dataclass
class Reading:
    """What was read in one picture or one clip: lines in reading order, the most confident kept."""
    lines: list[TextLine] = field(default_factory=list)
    dropped: int = 0  # lines over the per-picture limit, left out (the least confident)

    @property
    def text(self) -> str:
        return " ".join(line.text for line in self.lines)

    def titled(self, title: str) -> "Reading":
        """This reading with an item's name first, as the text printed on it (a page's title: see
        prodlens.embed.embedder.read_text); frames=0 marks it as given, not read."""
        return Reading([TextLine(title, 1.0, [], 0)] + self.lines, self.dropped) if title.strip() else self

    def to_dict(self) -> dict:
        return {"lines": [asdict(line) for line in self.lines], "dropped": self.dropped}

    @classmethod
    def from_dict(cls, d: dict) -> "Reading":
        return cls([TextLine(**line) for line in d.get("lines", [])], int(d.get("dropped", 0)))


def keyframes(frames: list, count: int) -> list:
    """`count` frames spread evenly over a clip's sampled frames (all of them when it has fewer)."""
    return [frames[i] for i in uniform_positions(len(frames), count)] if count < len(frames) else list(frames)


def merge(readings: list[Reading], max_lines: int = MAX_LINES) -> Reading:
    """One reading of a clip from its frames': a line seen on several frames counts once (its best read), with the
    number of frames it was seen on."""
    merged: dict[str, TextLine] = {}
    for reading in readings:
        for line in reading.lines:
            key = _fold(line.text)
            if key in merged:
                seen = merged[key]
                best = line if line.score > seen.score else seen
                merged[key] = TextLine(best.text, best.score, best.box, seen.frames + 1)
            else:
                merged[key] = TextLine(line.text, line.score, line.box, 1)
    lines = list(merged.values())
    dropped = sum(r.dropped for r in readings) + max(0, len(lines) - max_lines)
    return Reading(_most_confident(lines, max_lines), dropped)


class OcrReader:
    """Reads pictures with one OCR model (`prodlens.ocr.engines`); `workers` engines of one thread each read
    side by side (ONNX Runtime releases the GIL), so OCR takes `workers` cores and no more."""

    def __init__(self, model: str = DEFAULT_OCR_MODEL, cache: FeatureCache | None = None, workers: int = 1,
                 min_score: float = MIN_SCORE, max_lines: int = MAX_LINES):
        if model not in OCR_ENGINES:
            build_ocr_engine(model)  # the error that names the known models
        self.model = model
        self.cache = cache if cache is not None else FeatureCache(None)
        self.workers = max(1, workers)
        self.min_score, self.max_lines = min_score, max_lines
        self._free: list = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.workers)  # at most `workers` engines, however many callers

    @property
    def key(self) -> str:
        """The cache key of this reader's output: the model, its package version, the confidence floor and the
        line limit (the engines' files ship inside the versioned wheel)."""
        package = OCR_PACKAGES.get(self.model, self.model)
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "missing"
        return model_key(f"ocr:{self.model}", package=f"{package}-{version}", min_score=self.min_score,
                         max_lines=self.max_lines)

    def read(self, images: list[Image.Image], keys: list[str] | None = None, progress: bool = False,
             label: str = "reading text") -> list[Reading]:
        """One Reading per image. `keys`: the images' content keys (e.g. file digests); without them each image's
        pixels are hashed. Cached readings are not read again."""
        keys = keys if keys is not None else [pixel_digest(im) for im in images]
        out: list[Reading | None] = [None] * len(images)
        todo = []
        for i, key in enumerate(keys):
            cached = self.cache.get_record(self.key, "ocr", key)
            if cached is not None:
                out[i] = Reading.from_dict(cached)
            else:
                todo.append(i)
        for i, reading in zip(todo, self._read_all([images[i] for i in todo], progress, label)):
            out[i] = reading
            self.cache.put_record(self.key, "ocr", keys[i], reading.to_dict())
        return out  # type: ignore[return-value]

    def _read_all(self, images: list[Image.Image], progress: bool = False, label: str = "reading text"):
        """Each image's Reading, in order, read by `workers` engines side by side."""
        if not images:
            return
        with progress_bar(len(images), label, enabled=progress) as advance, \
                cf.ThreadPoolExecutor(max_workers=self.workers) as pool:
            for reading in pool.map(self._read_one, images):
                advance(1)
                yield reading

    def cached_clip(self, key: str) -> Reading | None:
        cached = self.cache.get_record(self.key, "ocr-clip", key)
        return Reading.from_dict(cached) if cached is not None else None

    def read_clips(self, clips: list[list[Image.Image]], keys: list[str], progress: bool = False,
                   bad: BadRecords | None = None, records: list[str] | None = None) -> list[Reading]:
        """One merged Reading per clip (its frames as given: pick keyframes first), cached under the clip's key;
        a clip read with lines left out is reported in `bad` as a note."""
        out: list[Reading | None] = [self.cached_clip(key) for key in keys]
        todo = [i for i, reading in enumerate(out) if reading is None]
        owners = [i for i in todo for _ in clips[i]]
        per_clip: dict[int, list[Reading]] = {i: [] for i in todo}
        for i, reading in zip(owners, self._read_all([f for i in todo for f in clips[i]], progress)):
            per_clip[i].append(reading)
        for i in todo:
            out[i] = merge(per_clip[i], self.max_lines)
            self.cache.put_record(self.key, "ocr-clip", keys[i], out[i].to_dict())
        if bad is not None and records is not None:
            for record, reading in zip(records, out):
                if reading.dropped:
                    bad.add(record, f"OCR read {reading.dropped + len(reading.lines)} lines; kept the "
                                    f"{len(reading.lines)} most confident", "ocr")
        return out  # type: ignore[return-value]

    def read_frames(self, frames: list[Image.Image]) -> Reading:
        """An uploaded clip's or photo's frames, read and merged (not cached: uploads are one-off)."""
        return merge([self._read_one(f) for f in frames], self.max_lines)

    def _read_one(self, image: Image.Image) -> Reading:
        with self._slots:
            with self._lock:
                engine = self._free.pop() if self._free else None
            engine = engine or build_ocr_engine(self.model, threads=1)
            try:
                lines = engine.read(image)
            finally:
                with self._lock:
                    self._free.append(engine)
        kept = [TextLine(t.strip(), round(s, 4), box) for t, s, box in lines if s >= self.min_score and t.strip()]
        return Reading(_most_confident(kept, self.max_lines), max(0, len(kept) - self.max_lines))

def pixel_digest(image: Image.Image) -> str:
    h = hashlib.sha256(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def _most_confident(lines: list[TextLine], limit: int) -> list[TextLine]:
    if len(lines) <= limit:
        return lines
    keep = set(sorted(range(len(lines)), key=lambda i: -lines[i].score)[:limit])
    return [line for i, line in enumerate(lines) if i in keep]  # reading order kept


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
