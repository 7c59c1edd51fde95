"""Zero-shot product embeddings from pretrained encoders, with a persistent feature cache.

Every sample gets two blocks, concatenated and L2-normalised:
- a visual block: the mean of its L2-normalised frame (or page image) features;
- a text-space block: its text (title, description, ASR) embedded by the text encoder; for a sample without text
  (whose embedding is meant to include text), its images are carried into the text space by a convex combination of the text embeddings of the image model's
  top-k predicted class names (ConSE, Norouzi et al. 2014).
So `cosine(query, page) = w * visual similarity + (1 - w) * text-space similarity` when both sides have both blocks.
No image-text aligned (CLIP-style) weights ship in any wheel here, so the text↔image bridge is weak until the
training stage learns one; the evaluation report says so.
"""
from __future__ import annotations

import concurrent.futures as cf
import math
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..catalog import Catalog, Sample
from ..catalog.schema import resolve_media_path
from ..encoders import (CharNgramEncoder, l2_normalize, load_image_encoder, load_text_encoder, runtime_image_encoder,
                        weights_digest)
from ..errors import BadRecords, MediaError, ProdlensError, RecordError
from ..media import load_image, random_view, sample_frames, uniform_positions
from ..ocr import OcrReader, Reading, keyframes
from ..progress import progress_bar
from ..cache import FeatureCache, combine_digests, file_digest, text_digest
from .config import EmbedConfig
from .encoder import ProductEncoder
from .speech import SpeechText
from .store import Embeddings

PROMPT_TEMPLATE = "a photo of a {}."


@dataclass
class SampleFeatures:
    visual: np.ndarray | None = None  # (k, D) raw pooled features of the sample's k frames
    probs: np.ndarray | None = None  # (k, C) class probabilities, when the image model has a labelled head
    text: np.ndarray | None = None  # (T,) normalised text embedding, when the sample has text
    read: np.ndarray | None = None  # (R,) normalised trigram vector of the text read in its pictures (+ page title)
    reading: Reading | None = None  # what OCR read in its pictures, when ocr is on


class FeatureExtractor:
    """What every product encoder reads: the pretrained encoders (loaded on first use), the feature cache, decoding
    of pages and clips, speech under the speech setting, and the ConSE bridge from images to the text space. The
    zero-shot head (`ProductEmbedder`) and the trained network (`prodlens.model.CheckpointEmbedder`) both compose
    their vectors from it."""

    def __init__(self, config: EmbedConfig | None = None, cache: FeatureCache | None = None,
                 image_encoder=None, image_key: str | None = None):
        """`image_encoder` / `image_key`: use an already built encoder (e.g. a fine-tuned backbone) cached under
        its own key instead of building `config.image_encoder`."""
        self.config = config or EmbedConfig()
        self.cache = cache if cache is not None else FeatureCache(None)
        self._image_encoder = image_encoder
        self._image_key = image_key
        self._runtime_encoder = None
        self._text_encoder = None
        self._label_matrix: np.ndarray | None = None
        self._speech: SpeechText | None = None
        self._reader: OcrReader | None = None
        self.read_encoder = CharNgramEncoder(dim=self.config.ocr_dim)

    def weights(self) -> dict:
        """The digests of the weights the encoders resolve to (a fine-tuned backbone: its own key)."""
        return {"image": self._image_key or weights_digest(self.config.image_encoder),
                "text": weights_digest(self.config.text_encoder)}

    def speech_identity(self) -> str | None:
        """What decides the speech part of a clip's text under gated or summarised speech (the evidence, detector,
        extractor, prompt and backend versions): part of the model's identity, so an index built before a rule
        changed refuses vectors made after. None for raw or no speech."""
        if self.config.speech == "gated":
            return self.speech.summarizer.gate_key
        if self.config.speech == "anchored":
            return self.speech.summarizer.anchor_key
        if self.config.speech == "summary":
            return self.speech.summarizer.model_key
        return None

    def with_cache(self, cache: FeatureCache) -> "FeatureExtractor":
        other = self.with_config()
        other.cache = cache
        return other

    def with_config(self, **changes) -> "FeatureExtractor":
        """Another extractor with some settings changed, sharing this one's cache and loaded encoders."""
        other = FeatureExtractor(replace(self.config, **changes), self.cache)
        if other.config.image_encoder == self.config.image_encoder and other.config.image_size == self.config.image_size:
            other._image_encoder, other._label_matrix = self._image_encoder, self._label_matrix
            other._image_key = self._image_key
            if other.config.runtime == self.config.runtime:
                other._runtime_encoder = self._runtime_encoder
        if other.config.text_encoder == self.config.text_encoder:
            other._text_encoder = self._text_encoder
        if other.config.summarizer == self.config.summarizer and self._speech is not None:
            other._speech = SpeechText(other, self._speech._summarizer)
        if other.config.ocr_model == self.config.ocr_model and self._reader is not None:
            other._reader = self._reader
        return other

    @property
    def reader(self) -> OcrReader:
        """The OCR reader (prodlens.ocr) of this config's model, reading with this extractor's cache."""
        if self._reader is None or self._reader.cache is not self.cache:
            self._reader = OcrReader(self.config.ocr_model, self.cache, workers=ocr_workers())
        return self._reader

    # -- encoders, loaded on first use ---------------------------------------------------------------------------
    @property
    def torch_image_encoder(self):
        """The image encoder as a torch module (what training fine-tunes and export traces)."""
        if self._image_encoder is None:
            self._image_encoder = load_image_encoder(self.config.image_encoder, self.config.device,
                                                      self.config.image_size)
        return self._image_encoder

    @property
    def image_encoder(self):
        """The image encoder in the configured runtime: ONNX Runtime (on CPU, for an exportable encoder) or torch.
        Both give the same features (to ~1e-6), so they share cache entries."""
        if self._runtime_encoder is None:
            if self.config.runtime == "onnx" and self.config.device == "cpu":
                identity = self._image_key or f"{self.config.image_encoder}#{weights_digest(self.config.image_encoder)}"
                self._runtime_encoder = runtime_image_encoder(self.torch_image_encoder,
                                                              f"{identity}@{self.config.image_size}")
            else:
                self._runtime_encoder = self.torch_image_encoder
        return self._runtime_encoder

    @property
    def text_encoder(self):
        if self._text_encoder is None:
            self._text_encoder = load_text_encoder(self.config.text_encoder, self.config.device)
        return self._text_encoder

    # Cache keys name the model by its spec and the content of the weights it resolves to (not by the loaded
    # object), so lookups before and after loading agree and a model retrained in place is a new key.
    @property
    def image_model_key(self) -> str:
        spec = self.config.image_encoder
        key = self._image_key or f"{spec}#{weights_digest(spec)}@{self.config.image_size}"
        return key + "+flip" if self.config.flip_tta else key

    @property
    def text_model_key(self) -> str:
        return f"{self.config.text_encoder}#{weights_digest(self.config.text_encoder)}"

    def sample_features(self, catalog: Catalog, samples: list[Sample] | None = None, progress: bool = True,
                        view: int = 0) -> tuple[dict[str, SampleFeatures], BadRecords]:
        """Visual and text features of each sample, from the cache where possible. Bad samples are skipped.
        `view` > 0 encodes a training look at the frames (`media.random_view`: crop, mirror, colour jitter; seeded by
        view and sample, so repeatable), cached separately."""
        samples = list(catalog.samples if samples is None else samples)
        bad = BadRecords()
        feats = {s.sample_id: SampleFeatures() for s in samples}
        visual_keys: dict[str, str] = {}
        for s in samples:
            try:
                visual_keys[s.sample_id] = self._visual_key(catalog, s, view)
            except RecordError as e:
                bad.add_error(e, "embed")
                feats.pop(s.sample_id)
        self._fill_visual(catalog, [s for s in samples if s.sample_id in visual_keys], visual_keys, feats, bad,
                          progress, view)
        if self.config.ocr != "none" and not view:  # an augmented look shows no other text
            self._fill_reading(catalog, [s for s in samples if s.sample_id in feats], visual_keys, feats, bad,
                               progress)
        speech = self.speech.of_samples([s for s in samples if s.sample_id in feats], bad, progress, feats)
        texts = {s.sample_id: catalog.sample_text(s, self.config.speech != "none", speech.get(s.sample_id))
                 for s in samples if s.sample_id in feats}
        vectors = self.text_vectors([t for t in texts.values() if t], progress=progress)
        for sid, t in texts.items():
            if t:
                feats[sid].text = vectors[t]
        return feats, bad

    def _fill_reading(self, catalog, samples, keys, feats, bad, progress) -> None:
        readings = self.readings(catalog, samples, bad, progress, keys)
        titled = "text" in self.config.page_inputs
        texts = [read_text(s, readings.get(s.sample_id), titled) for s in samples]
        for s, vector in zip(samples, self.read_encoder.encode(texts)):
            feats[s.sample_id].reading = readings.get(s.sample_id)
            feats[s.sample_id].read = vector if vector.any() else None

    def readings(self, catalog: Catalog, samples: list[Sample] | None = None, bad: BadRecords | None = None,
                 progress: bool = False, keys: dict[str, str] | None = None) -> dict[str, Reading]:
        """sample_id → what OCR read in its pictures (a clip: its keyframes, merged), cached by picture content; a
        sample whose media cannot be decoded is reported in `bad` and left out. Empty when ocr is "none"."""
        if self.config.ocr == "none":
            return {}
        samples = list(catalog.samples if samples is None else samples)
        bad = bad if bad is not None else BadRecords()
        reader, readings = self.reader, {}
        clip_keys = {}
        for s in samples:
            try:
                clip_keys[s.sample_id] = f"{(keys or {}).get(s.sample_id) or self._visual_key(catalog, s)}" \
                                         f"|keyframes={self.config.ocr_frames}"
            except RecordError as e:
                bad.add(e.record, f"{e.problem} (nothing read)", "ocr")
        samples = [s for s in samples if s.sample_id in clip_keys]
        with progress_bar(len(samples), "reading text in pictures", enabled=progress) as advance:
            for start in range(0, len(samples), 64):  # memory: one chunk of decoded frames at a time
                chunk = samples[start:start + 64]
                todo, frames = [], []
                for s in chunk:
                    if (cached := reader.cached_clip(clip_keys[s.sample_id])) is not None:
                        readings[s.sample_id] = cached
                        continue
                    try:
                        frames.append(keyframes(self.load_frames(catalog, s), self.config.ocr_frames))
                        todo.append(s)
                    except RecordError as e:
                        bad.add(e.record, f"{e.problem} (nothing read)", "ocr")
                if todo:
                    got = reader.read_clips(frames, [clip_keys[s.sample_id] for s in todo], bad=bad,
                                            records=[s.sample_id for s in todo])
                    readings.update({s.sample_id: r for s, r in zip(todo, got)})
                advance(len(chunk))
        return readings

    def _visual_key(self, catalog: Catalog, s: Sample, view: int = 0) -> str:
        # "random-view": the looks are media.random_view's (earlier releases cached other crops under "view{n}")
        return media_key(catalog.root, s, self.config.frames, *((f"random-view{view}",) if view else ()))

    def _fill_visual(self, catalog, samples, keys, feats, bad, progress, view: int = 0) -> None:
        model = self.image_model_key
        cached_f = self.cache.get_many(model, "features", list(set(keys.values())))
        cached_p = self.cache.get_many(model, "probs", list(set(keys.values())))
        todo = []
        for s in samples:
            key = keys[s.sample_id]
            if key in cached_f:
                feats[s.sample_id].visual = cached_f[key]
                feats[s.sample_id].probs = cached_p.get(key)
            else:
                todo.append(s)
        if not todo:
            return
        model = self.image_model_key
        chunk_size = max(1, self.config.batch_size // 2)
        chunks = [todo[i:i + chunk_size] for i in range(0, len(todo), chunk_size)]
        label = "encoding images" + (f" (augmented view {view})" if view else "")
        with progress_bar(len(todo), label, enabled=progress) as advance, \
                cf.ThreadPoolExecutor(max_workers=1) as pool:
            # Decode the next chunk in a background thread while the model runs on this one.
            pending = pool.submit(self._decode_chunk, catalog, chunks[0], view)
            for i in range(len(chunks)):
                decoded = pending.result()
                if i + 1 < len(chunks):
                    pending = pool.submit(self._decode_chunk, catalog, chunks[i + 1], view)
                store_f, store_p = {}, {}
                frames_all: list[Image.Image] = []
                spans = []
                for s, frames, error in decoded:
                    if error is not None:
                        bad.add_error(error, "decode")
                        feats.pop(s.sample_id, None)
                        continue
                    spans.append((s, len(frames_all), len(frames_all) + len(frames)))
                    frames_all.extend(frames)
                out_f, out_p = self.encode_frames(frames_all)
                for s, a, b in spans:
                    key = keys[s.sample_id]
                    feats[s.sample_id].visual = store_f[key] = out_f[a:b]
                    if out_p is not None:
                        feats[s.sample_id].probs = store_p[key] = out_p[a:b]
                self.cache.put_many(model, "features", store_f)
                if store_p:
                    self.cache.put_many(model, "probs", store_p)
                advance(len(decoded))

    def prepare_frames(self, frames: list[Image.Image]) -> list[Image.Image]:
        """Frames resized and cropped by the image encoder ahead of `encode_frames` (see ProductEncoder.
        prepare_query_frames); as they are when the encoder offers no `prepare`, or with flip TTA (a mirror of the
        crop is not the crop of the mirror)."""
        prepare = getattr(self.image_encoder, "prepare", None)
        return frames if prepare is None or self.config.flip_tta else prepare(frames)

    def encode_frames(self, frames: list[Image.Image]):
        """(pooled features, class probabilities or None) of frames, mirror-averaged with flip TTA."""
        encoder = self.image_encoder
        feats, probs = [], []
        for i in range(0, len(frames), self.config.batch_size):
            out = encoder.encode(frames[i:i + self.config.batch_size])
            features, logits = out.features.astype(np.float32), out.logits
            if self.config.flip_tta:
                mirrored = encoder.encode([ImageOps.mirror(f) for f in frames[i:i + self.config.batch_size]])
                features = (features + mirrored.features) / 2
                logits = None if logits is None else (logits + mirrored.logits) / 2
            feats.append(features)
            if logits is not None:
                probs.append(_softmax(logits).astype(np.float16))  # probabilities need no float32 precision
        f = np.concatenate(feats) if feats else np.zeros((0, encoder.dim), np.float32)
        return f, (np.concatenate(probs) if probs else None)

    def _decode_chunk(self, catalog: Catalog, chunk: list[Sample], view: int = 0):
        out = []
        for s in chunk:
            try:
                frames = self.load_frames(catalog, s)
                if view:  # the same random look every time this view of this sample is asked for
                    rng = np.random.default_rng([view, zlib.crc32(s.sample_id.encode())])
                    frames = [random_view(f, rng) for f in frames]
                out.append((s, frames, None))
            except RecordError as e:
                out.append((s, None, e))
        return out

    def load_frames(self, catalog: Catalog, s: Sample) -> list[Image.Image]:
        """The RGB frames that represent a sample: its page image(s), sampled video frames, or frame images."""
        return load_sample_frames(catalog.root, s, self.config.frames)

    @property
    def speech(self) -> SpeechText:
        """What clips' speech contributes under this config (`embed.speech.SpeechText`)."""
        if self._speech is None:
            self._speech = SpeechText(self)
        return self._speech

    # -- text ---------------------------------------------------------------------------------------------------
    def text_vectors(self, texts: list[str], progress: bool = False) -> dict[str, np.ndarray]:
        unique = sorted(set(texts))
        keys = {t: text_digest(t) for t in unique}
        cached = self.cache.get_many(self.text_model_key, "text", list(keys.values()))
        out = {t: cached[k] for t, k in keys.items() if k in cached}
        todo = [t for t in unique if t not in out]
        if todo:
            encoder = self.text_encoder
            step = 256
            with progress_bar(len(todo), "encoding texts", enabled=progress) as advance:
                for i in range(0, len(todo), step):
                    batch = todo[i:i + step]
                    vecs = encoder.encode(batch)
                    self.cache.put_many(self.text_model_key, "text", {keys[t]: v for t, v in zip(batch, vecs)})
                    out.update(zip(batch, vecs))
                    advance(len(batch))
        return out

    def _labels(self) -> np.ndarray | None:
        """Text embeddings of the image model's class names (ConSE bridge), or None if it has no labelled head."""
        if self._label_matrix is None:
            names = self.image_encoder.class_names
            if not names:
                return None
            prompts = [PROMPT_TEMPLATE.format(n) for n in names]
            vectors = self.text_vectors(prompts)
            self._label_matrix = np.stack([vectors[p] for p in prompts]).astype(np.float32)
        return self._label_matrix

    def bridge(self, probs: np.ndarray) -> np.ndarray | None:
        """ConSE: an image's class probabilities → a text-space vector (top-k label embeddings, prob-weighted)."""
        labels = self._labels()
        if labels is None or probs is None:
            return None
        p = np.asarray(probs, dtype=np.float32)
        top = np.argsort(-p)[: self.config.bridge_topk]
        return l2_normalize(p[top] @ labels[top])

    # -- query-time helpers (no cache: uploads are one-off) -----------------------------------------------------
    def read_rows(self, feats: list[SampleFeatures]) -> np.ndarray:
        """(N, R) read-text vectors of samples' features, a zero row where nothing was read."""
        rows = np.zeros((len(feats), self.read_encoder.dim), np.float32)
        for i, f in enumerate(feats):
            if f.read is not None:
                rows[i] = f.read
        return rows

    def read_query(self, frames: list[Image.Image]) -> Reading | None:
        """What OCR reads in an ad-hoc query's frames (its keyframes, at their own resolution: read them before
        `prepare_frames` crops them); None when this config reads nothing."""
        if self.config.ocr == "none" or not frames:
            return None
        return self.reader.read_frames(keyframes(frames, self.config.ocr_frames))

    def query_features(self, frames: list[list[Image.Image]], texts: list[str],
                       readings: list[Reading | None] | None = None) -> list[SampleFeatures]:
        """Backbone features of ad-hoc queries (each: frames of an uploaded photo or clip, and/or text), with one
        batched pass of each encoder over all of them. `readings`: what `read_query` read in each query's frames
        before they were prepared; without them the frames as given are read."""
        for i, (f, t) in enumerate(zip(frames, texts)):
            if not f and not t.strip():
                raise RecordError("query" if len(frames) == 1 else f"query {i}",
                                  "empty query: give an image, a clip or some text")
        flat = [img for f in frames for img in f]
        out_f, out_p = self.encode_frames(flat) if flat else (None, None)
        wanted = [t for t in texts if t.strip()]
        vectors = dict(zip(wanted, self.text_encoder.encode(wanted))) if wanted else {}
        if readings is None:
            readings = [self.read_query(f) for f in frames]
        reads = self.read_encoder.encode([r.text if r is not None else "" for r in readings])
        feats, start = [], 0
        for f, t, reading, read in zip(frames, texts, readings, reads):
            end = start + len(f)
            feats.append(SampleFeatures(out_f[start:end] if f else None,
                                        out_p[start:end] if f and out_p is not None else None,
                                        vectors.get(t) if t.strip() else None,
                                        read if read.any() else None, reading))
            start = end
        return feats


class ProductEmbedder(ProductEncoder):
    """The zero-shot encoder: catalogue samples → vectors composed from pretrained encoders' features (a visual
    block and a text-space block, see the module docstring); `embed_catalog` for catalogues, `encode` for ad-hoc
    inputs (see ProductEncoder). Its features come from a `FeatureExtractor` (`.features`)."""

    def __init__(self, config: EmbedConfig | None = None, cache: FeatureCache | None = None,
                 image_encoder=None, image_key: str | None = None):
        self.features = FeatureExtractor(config, cache, image_encoder, image_key)

    @property
    def config(self) -> EmbedConfig:
        return self.features.config

    @property
    def cache(self) -> FeatureCache:
        return self.features.cache

    @property
    def name(self) -> str:
        return self.config.model_name()

    def signature(self) -> dict:
        speech = self.features.speech_identity()
        return {**self.config.signature(), "weights": self.features.weights(), **({"speech": speech} if speech else {})}

    @property
    def frames(self) -> int:
        return self.config.frames

    def save(self, path: str | Path) -> Path:
        """The zero-shot settings and the digests of the weights they resolve to, as a model directory."""
        from .saved import model_card, write_model_dir

        if self.features._image_key:
            raise ProdlensError("a fine-tuned backbone is saved with the trained model it belongs to")
        sig = self.signature()
        record = {"kind": "zero-shot", "settings": sig["config"], "weights": sig["weights"],
                  "model_id": model_id(sig)}
        return write_model_dir(path, record, model_card(self.name, record))

    def with_cache(self, cache: FeatureCache) -> "ProductEmbedder":
        return self._with(self.features.with_cache(cache))

    def with_config(self, **changes) -> "ProductEmbedder":
        """Another embedder with some settings changed, sharing this one's cache and loaded encoders."""
        return self._with(self.features.with_config(**changes))

    def _with(self, features: FeatureExtractor) -> "ProductEmbedder":
        other = ProductEmbedder.__new__(ProductEmbedder)
        other.features = features
        return other

    def embed_catalog(self, catalog: Catalog, progress: bool = True) -> Embeddings:
        feats, bad = self.features.sample_features(catalog, progress=progress)
        rows, vectors = [], []
        for s in catalog.samples:
            if s.sample_id not in feats:
                continue
            try:
                vectors.append(self.compose(feats[s.sample_id], s.domain, s.sample_id))
                rows.append(s)
            except RecordError as e:
                bad.add_error(e, "embed")
        dim = vectors[0].shape[0] if vectors else 0
        meta = {"model": self.config.model_name(), "config": asdict(self.config), "catalog": catalog.name,
                "image_model": self.features.image_model_key, "text_model": self.features.text_model_key,
                "signature": self.signature(), "model_id": model_id(self.signature())}
        bad_all = BadRecords()
        bad_all.extend(catalog.bad)
        bad_all.extend(bad)
        return Embeddings([s.sample_id for s in rows], [s.product_id for s in rows], [s.domain for s in rows],
                          [s.split for s in rows],
                          np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32),
                          meta, bad_all)

    # -- composing the zero-shot embedding ----------------------------------------------------------------------
    def compose(self, f: SampleFeatures, domain: str, record: str = "sample") -> np.ndarray:
        inputs = self.config.page_inputs if domain == "page" else self.config.clip_inputs
        use_image, use_text = "image" in inputs, "text" in inputs
        visual = l2_normalize(l2_normalize(f.visual).mean(axis=0)) if use_image and f.visual is not None else None
        text_block = f.text if use_text and f.text is not None else None
        if use_text and text_block is None and use_image and f.probs is not None:
            text_block = self.features.bridge(f.probs.astype(np.float32).mean(axis=0))
        if visual is None and text_block is None:
            need = "text (title / description / ASR)" if inputs == "text" else "decodable media"
            raise RecordError(record, f"nothing to embed: '{inputs}' embedding needs {need}")
        w = self.config.visual_weight
        v_dim = int(f.visual.shape[-1]) if f.visual is not None else self.features.image_encoder.dim
        t_dim = int(f.text.shape[-1]) if f.text is not None else self.features.text_encoder.dim
        v = math.sqrt(w) * visual if visual is not None else np.zeros(v_dim, np.float32)
        t = math.sqrt(1 - w) * text_block if text_block is not None else np.zeros(t_dim, np.float32)
        joined = np.concatenate([v, t]).astype(np.float32)
        if self.config.read_weight is None:
            return l2_normalize(joined)
        return with_read_block(joined[None], self.features.read_rows([f]), self.config.read_weight)[0]

    def embed_queries(self, frames: list[list[Image.Image]], texts: list[str], domain: str,
                      readings: list | None = None) -> np.ndarray:
        feats = self.features.query_features(frames, texts, readings)
        return np.stack([self.compose(f, domain, "query") for f in feats]).astype(np.float32)



def media_key(root: Path, s: Sample, frames: int, *extra: str) -> str:
    """Cache key of what a sample's pixels are: the content of its media files, the frames taken, and `extra`
    (the augmented view...). A media file that is not there is a MediaError naming the sample."""
    digests = []
    for rel in s.media_paths:
        path = resolve_media_path(root, rel, s.sample_id)
        if not path.is_file():
            raise MediaError(s.sample_id, f"media file not found: {rel}")
        digests.append(file_digest(path))
    return combine_digests(digests, "video" if s.video else "images", frames, *extra)


def load_sample_frames(root: Path, s: Sample, frames: int) -> list[Image.Image]:
    """A sample's RGB frames: its page image(s), `frames` frames sampled from its video, or that many of its frame
    images. A plain function of (root, sample), so DataLoader worker processes can call it."""
    if s.video:
        return sample_frames(resolve_media_path(root, s.video, s.sample_id), frames, s.sample_id)
    picked = [s.images[i] for i in uniform_positions(len(s.images), frames)]
    out, errors = [], []
    for rel in picked:
        try:
            out.append(load_image(resolve_media_path(root, rel, s.sample_id), s.sample_id))
        except MediaError as e:
            errors.append(e.problem)  # a broken frame in a frame list is skipped, like a broken video frame
    if not out:
        raise MediaError(s.sample_id, "; ".join(errors) or "no frames")
    return out


def with_read_block(vectors: np.ndarray, reads: np.ndarray, weight: float) -> np.ndarray:
    """Unit vectors (N, E) joined by the read-text block (N, R) (zero rows: nothing read), so that
    cosine = (1 - weight) * cosine of the vectors + weight * cosine of the read text (prodlens.encoders.ngrams)."""
    vectors = np.asarray(vectors, np.float32)
    joined = np.concatenate([math.sqrt(1 - weight) * vectors, math.sqrt(weight) * np.asarray(reads, np.float32)], 1)
    return l2_normalize(joined)


def read_text(s: Sample, reading: Reading | None, titled: bool = True) -> str:
    """The text a sample's read block is made of: what OCR read in its pictures, and for a page (`titled`: when its
    text is part of its embedding) its title too — the name printed on the product, which OCR misses on a stylised
    logo. (Title + read text beat title + description + read text by 10 points of packaged top-1 on Grocery train.)"""
    parts = [s.title] if titled and s.domain == "page" and s.title else []
    return " ".join(parts + ([reading.text] if reading is not None and reading.text else []))


def ocr_workers() -> int:
    """Cores for reading: all of this process's share (torch's thread count follows --workers and OMP limits)."""
    import torch

    return max(1, min(torch.get_num_threads(), 4))


def model_id(signature: dict) -> str:
    """A short stable id of an embedding model's signature: indexes refuse vectors from any other model."""
    from ..runs import config_digest

    return config_digest(signature, 16)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
