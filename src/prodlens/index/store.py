"""A product index on disk: FAISS vectors + per-item metadata + thumbnails + the model that made the vectors.

    INDEX_DIR/
      CURRENT              name of the live version ("v000003"), replaced atomically
      v000003/index.json   kind, parameters, dimension, model signature and id, counts
      v000003/vectors.faiss
      v000003/items.parquet   id, sample_id, product_id, domain, split, title, category, thumbnail, text, read,
                              attributes (JSON: brand, price... from products.csv, filterable)
      v000003/tombstones.npy  ids removed from an HNSW graph (hidden until the next rebuild)
      v000003/lexical/     BM25 over the items' texts (prodlens.index.lexical), for hybrid text search
      thumbs/<hash>.jpg    content-named, never rewritten in place

The directory is a `prodlens.versioned` store whose manifest is CURRENT. Every save writes a whole new version
directory, then swaps CURRENT: a crash at any point leaves the previous version intact and readable. Edits are kept as
a journal until saved; `save` holds the store's writer lock, and when another writer has saved since this index was
opened (two `prodlens index add` embedding at once), the journal is replayed on the newest version before writing, so
no writer's update is lost. Readers never see a half-written version: `open` retries when the version it was pointed
at has just been pruned.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import atomic
from ..embed import Embeddings
from ..versioned import LOCK_TIMEOUT, VersionedStore
from ..errors import ProdlensError
from .filters import Condition, decode_attributes, encode_attributes, matches
from .lexical import LexicalIndex
from .milvus import MilvusVectors
from .relevance import RelevanceModel
from .vectors import IndexConfig, VectorIndex

log = logging.getLogger(__name__)

FORMAT = 1
KEEP_VERSIONS = 2
MAX_FETCH = 16_384  # most hits one vector search returns (Milvus' limit too)
ITEM_COLUMNS = ("sample_id", "product_id", "domain", "split", "title", "category", "thumbnail", "text", "read")
NO_RESULTS = {  # why a search found nothing: said with every empty answer
    "filtered": "the filters exclude every indexed item",
    "domain": "the index holds no {domains} items (it has: {present})",
    "min_score": "no hit scores at least min_score {min_score:g} (the best scored {best:.3f})",
    "offset": "offset {offset} is past the last of the {total} hits",
}


class ModelMismatch(ProdlensError):
    """Vectors from one embedding model queried against (or added to) an index built by another."""


@dataclass
class Item:
    id: int
    sample_id: str
    product_id: str
    domain: str
    split: str | None = None
    title: str = ""
    category: str = ""
    thumbnail: str = ""  # file name under thumbs/, or ""
    text: str = ""  # what lexical search matches: titles, category, description, speech
    read: str = ""  # the text OCR read in its pictures (matched letter by letter: prodlens.index.lexical)
    attributes: dict = field(default_factory=dict)  # its product's brand, price, ... (filterable)


@dataclass
class Hit:
    product_id: str
    score: float
    domain: str
    sample_id: str
    title: str = ""
    category: str = ""
    thumbnail: str = ""
    cosine: float = 0.0  # the query vector's cosine with this sample's vector (score is the relevance made of it)
    attributes: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Found:
    """A page of hits, how many hits there are in all (`total`; `total_exact` False: at least that many — the count
    stops at the deepest page a query may ask for), and why there are none when there are none."""
    hits: list[Hit]
    total: int
    total_exact: bool = True
    reason: str | None = None


@dataclass
class IndexInfo:
    """Side information for the items of an Embeddings table (sample_id → title / category / thumbnail)."""
    titles: dict[str, str] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    thumbnails: dict[str, bytes] = field(default_factory=dict)  # JPEG bytes
    texts: dict[str, str] = field(default_factory=dict)  # lexical documents (default: title and category)
    reads: dict[str, str] = field(default_factory=dict)  # the text read in each sample's pictures (OCR)
    attributes: dict[str, dict] = field(default_factory=dict)  # product attributes (brand, price, ...) per sample


def thumbnail_name(sample_id: str, data: bytes) -> str:
    return hashlib.sha1(sample_id.encode() + b"\0" + data).hexdigest()[:20] + ".jpg"


class ProductIndex:
    def __init__(self, path: Path, vectors: VectorIndex, items: dict[int, Item], record: dict,
                 base: str | None = None):
        """`base`: the version this state was read from (None: a new index, not yet saved)."""
        self.path = Path(path)
        self.vectors = vectors
        self.items = items
        self.record = record
        self._by_sample = {it.sample_id: i for i, it in items.items()}
        self._filter_cache: dict[tuple, np.ndarray] = {}
        self._count_cache: dict[tuple, int] = {}
        self._product_samples: dict[str, list[int]] | None = None
        self._base = base
        self._journal: list[tuple] = []  # edits since `base`: replayed if another writer saved in between
        self._lexical: LexicalIndex | None = None  # built on first use after an edit; saved with each version
        self._relevance: RelevanceModel | None = None
        self._attribute_names: set[str] | None = None

    # -- identity ---------------------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.record["model_id"]

    @property
    def signature(self) -> dict:
        return self.record["signature"]

    @property
    def dim(self) -> int:
        return self.vectors.dim

    def __len__(self) -> int:
        return len(self.items)

    def _check_model(self, model_id: str | None, what: str = "query") -> None:
        if model_id is not None and model_id != self.model_id:
            raise ModelMismatch(f"{what} vectors come from model {model_id}, but this index was built by model "
                                f"{self.model_id} ({self.record.get('model', '?')}); embed with that model or "
                                "rebuild the index")

    # -- create / open ------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, embeddings: Embeddings, info: IndexInfo | None = None,
               config: IndexConfig | None = None) -> "ProductIndex":
        path = Path(path)
        if (path / "CURRENT").exists():
            raise ProdlensError(f"{path} already holds an index: use `prodlens index add` or pick a new directory")
        if len(embeddings) == 0:
            raise ProdlensError("nothing to index: no sample could be embedded")
        config = config or IndexConfig()
        meta = embeddings.meta
        if "model_id" not in meta:
            raise ProdlensError("these embeddings carry no model id (made by an older prodlens?): re-embed them")
        collection = None
        if config.store == "faiss":
            vectors = VectorIndex.create(embeddings.dim, config, embeddings.vectors)
        else:
            collection = f"prodlens_{uuid.uuid4().hex}"
            vectors = MilvusVectors.create(config.store, path, collection, embeddings.dim, config)
        record = {"format": FORMAT, "version": 0, "kind": vectors.kind, "config": config.to_dict(),
                  "collection": collection,
                  "dim": embeddings.dim, "model": meta.get("model", ""), "signature": meta["signature"],
                  "model_id": meta["model_id"], "checkpoint": meta.get("checkpoint"), "catalog": meta.get("catalog", ""),
                  "next_id": 0,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        index = cls(path, vectors, {}, record)
        index.add(embeddings, info)
        return index

    @classmethod
    def open(cls, path: str | Path) -> "ProductIndex":
        path = Path(path)
        store = _store(path)
        if not store.exists():
            raise ProdlensError(f"{path} is not a prodlens index (no CURRENT file); build one with "
                                "`prodlens index build`")
        return store.read(lambda current: cls._read(path, current["version"]))

    @classmethod
    def _read(cls, path: Path, name: str) -> "ProductIndex":
        version_dir = path / name
        try:
            record = json.loads((version_dir / "index.json").read_text())
            config = IndexConfig(**record["config"])
            if config.store == "faiss":
                tomb = np.load(version_dir / "tombstones.npy") if (version_dir / "tombstones.npy").exists() else ()
                vectors = VectorIndex.from_bytes((version_dir / "vectors.faiss").read_bytes(), record["kind"],
                                                 config, [int(t) for t in tomb])
            else:
                vectors = MilvusVectors.open(config.store, path, record["collection"], record["dim"], config,
                                             record["version"])
            table = pq.read_table(version_dir / "items.parquet")
        except FileNotFoundError:
            raise  # a writer removed this version while it was read: the store reads the current one
        except (OSError, ValueError, KeyError, RuntimeError, pa.ArrowException) as e:
            raise ProdlensError(f"index {version_dir} is unreadable: {e}") from e
        if record.get("format") != FORMAT:
            raise ProdlensError(f"index {path} has format {record.get('format')}, this prodlens reads {FORMAT}")
        cols = table.to_pydict()
        if "text" not in cols:  # saved before lexical search: its documents are the titles and categories
            cols["text"] = [_name(t, c) for t, c in zip(cols["title"], cols["category"])]
        if "read" not in cols:  # saved before pictures were read
            cols["read"] = [""] * len(cols["id"])
        attributes = cols.get("attributes") or [""] * len(cols["id"])  # saved before attributes: none
        items = {int(i): Item(int(i), *(cols[c][n] for c in ITEM_COLUMNS), decode_attributes(attributes[n]))
                 for n, i in enumerate(cols["id"])}
        index = cls(path, vectors, items, record, base=name)
        if (version_dir / "lexical" / "ids.npy").exists():
            try:
                index._lexical = LexicalIndex.load(version_dir / "lexical")
            except (OSError, ValueError, KeyError) as e:  # the next save writes it whole again
                log.warning("%s: lexical index unreadable (%s); rebuilding it from the items", version_dir, e)
        return index

    # -- edits --------------------------------------------------------------------------------------------------
    def add(self, embeddings: Embeddings, info: IndexInfo | None = None) -> tuple[int, int]:
        """Add samples; a sample already indexed is replaced. Returns (added, replaced). Call `save` to persist."""
        self._check_model(embeddings.meta.get("model_id"), "added")
        if embeddings.dim != self.dim:
            raise ModelMismatch(f"added vectors have dimension {embeddings.dim}, the index {self.dim}")
        info = info or IndexInfo()
        self._journal.append(("add", embeddings, info))
        replaced = [self._by_sample[s] for s in embeddings.sample_ids if s in self._by_sample]
        self._drop(replaced)
        start = self.record["next_id"]
        ids = np.arange(start, start + len(embeddings), dtype=np.int64)
        fields = [{"domain": d, "category": info.categories.get(sid, ""), "attributes": info.attributes.get(sid) or {}}
                  for sid, d in zip(embeddings.sample_ids, embeddings.domains)]
        self.vectors.add(embeddings.vectors, ids, fields)
        self.record["next_id"] = start + len(embeddings)
        thumbs_dir = self.path / "thumbs"
        for i, sid, pid, dom, split in zip(ids, embeddings.sample_ids, embeddings.product_ids, embeddings.domains,
                                           embeddings.splits):
            thumb = ""
            if sid in info.thumbnails:
                data = info.thumbnails[sid]
                thumb = thumbnail_name(sid, data)
                if not (thumbs_dir / thumb).exists():
                    atomic.write_bytes(thumbs_dir / thumb, data)
            title, category = info.titles.get(sid, ""), info.categories.get(sid, "")
            text = info.texts.get(sid) or _name(title, category)
            self.items[int(i)] = Item(int(i), sid, pid, dom, split, title, category, thumb, text,
                                      info.reads.get(sid, ""), dict(info.attributes.get(sid) or {}))
            self._by_sample[sid] = int(i)
        self._forget_derived()
        return len(embeddings) - len(replaced), len(replaced)

    def remove(self, sample_ids=(), product_ids=()) -> int:
        """Remove samples by id and every sample of the given products. Returns how many were removed."""
        self._journal.append(("remove", tuple(sample_ids), tuple(product_ids)))
        products = set(product_ids)
        ids = [self._by_sample[s] for s in sample_ids if s in self._by_sample]
        ids += [it.id for pid in products for it in self.samples_of(pid)]
        ids = sorted(set(ids))
        self._drop(ids)
        return len(ids)

    def _forget_derived(self) -> None:
        """After an edit: what is derived from the items (filters, counts, lookups, BM25) is made again on use."""
        self._filter_cache.clear()
        self._count_cache.clear()
        self._product_samples = None
        self._lexical = None
        self._attribute_names = None

    def _drop(self, ids: list[int]) -> None:
        if not ids:
            return
        self.vectors.remove(ids)
        for i in ids:
            item = self.items.pop(i)
            self._by_sample.pop(item.sample_id, None)
        self._forget_derived()

    def _needs_rebuild(self) -> bool:
        return len(self.vectors.tombstones) > 0.2 * max(1, len(self.items))

    def _rebuild(self) -> None:
        """A fresh FAISS structure over the live items (drops HNSW tombstones; re-trains IVF-PQ)."""
        ids = np.array(sorted(self.items), dtype=np.int64)
        vectors = self.vectors.reconstruct(ids)
        fresh = VectorIndex.create(self.dim, self.vectors.config, vectors)
        fresh.add(vectors, ids)
        self.vectors = fresh
        self.record["kind"] = fresh.kind

    # -- persistence ----------------------------------------------------------------------------------------------
    def save(self, lock_timeout: float = LOCK_TIMEOUT) -> Path:
        """Write a new version and make it current, atomically; older versions beyond the last two are removed.
        If another writer saved since this index was read, this one's edits are replayed on that newer version
        first (the result holds both writers' updates)."""
        store = _store(self.path)
        with store.writing(lock_timeout) as commit:
            current = commit.manifest["version"] if commit.manifest else None
            if current != self._base:
                self._rebase(current)
            if self._needs_rebuild():
                self._rebuild()
            version = _version_number(current) + 1
            name = _version_name(version)
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.path))
            try:
                self.record.update(version=version, count=len(self.items), kind=self.vectors.kind,
                                   domains=self._domain_counts(), updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                if isinstance(self.vectors, MilvusVectors):  # rows of `version`: unseen until CURRENT names it
                    self.vectors.persist(version, KEEP_VERSIONS)
                else:
                    data = self.vectors.to_bytes()
                    self.record["index_bytes"] = len(data)
                    _write_synced(tmp / "vectors.faiss", data)
                _write_synced(tmp / "items.parquet", self._items_parquet())
                self.lexical.save(tmp / "lexical")
                if self.vectors.tombstones:
                    buf = io.BytesIO()
                    np.save(buf, np.array(sorted(self.vectors.tombstones), dtype=np.int64))
                    _write_synced(tmp / "tombstones.npy", buf.getvalue())
                _write_synced(tmp / "index.json", json.dumps(self.record, indent=2).encode())
                if (self.path / name).exists():  # a save of this number that never became current (a crash)
                    shutil.rmtree(self.path / name)
                os.replace(tmp, self.path / name)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            commit({"version": name}, keep={_version_name(v) for v in range(version - KEEP_VERSIONS + 1, version + 1)})
            if isinstance(self.vectors, MilvusVectors):
                self.vectors.committed(version)
            self._base, self._journal = name, []
        return self.path / name

    def _rebase(self, current: str | None) -> None:
        """This index's journal replayed on the version another writer saved (`current`)."""
        if current is None:  # the other writer's index is gone: ours is a new one again
            self._base = None
            return
        log.warning("%s: another writer saved %s since this index was read; replaying %d edit(s) on it", self.path,
                    current, len(self._journal))
        latest = ProductIndex._read(self.path, current)
        if isinstance(self.vectors, MilvusVectors) and getattr(latest.vectors, "collection", None) != \
                self.vectors.collection:
            self.vectors.drop()  # this writer's own new collection: its edits are replayed on the other's
        for op, *args in self._journal:
            if op == "add":
                latest.add(*args)
            else:
                latest.remove(*args)
        self.vectors, self.items, self.record = latest.vectors, latest.items, latest.record
        self._by_sample = latest._by_sample
        self._forget_derived()
        self._base = current

    def write_lock(self, timeout: float = LOCK_TIMEOUT):
        """The index's writer lock; waits up to `timeout` seconds for another writer's save to finish."""
        return _store(self.path).writing(timeout)

    def _items_parquet(self) -> bytes:
        items = [self.items[i] for i in sorted(self.items)]
        table = pa.table({"id": pa.array([it.id for it in items], pa.int64()),
                          **{c: pa.array([getattr(it, c) for it in items], pa.string()) for c in ITEM_COLUMNS},
                          "attributes": pa.array([encode_attributes(it.attributes) for it in items], pa.string())})
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()

    # -- queries --------------------------------------------------------------------------------------------------
    def _domain_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for it in self.items.values():
            counts[it.domain] = counts.get(it.domain, 0) + 1
        return counts

    def is_current(self) -> bool:
        """Whether this is still the version CURRENT names (False once another writer has saved a newer one)."""
        try:
            return (self.path / "CURRENT").read_text().strip() == _version_name(self.record.get("version", 0))
        except OSError:
            return True  # no readable pointer: nothing newer to switch to

    def category_products(self) -> dict[str, int]:
        """Category → number of distinct products indexed in it."""
        products: dict[str, set[str]] = {}
        for it in self.items.values():
            if it.category:
                products.setdefault(it.category, set()).add(it.product_id)
        return {c: len(products[c]) for c in sorted(products)}

    def samples_of(self, product_id: str) -> list[Item]:
        """Every indexed sample of a product (a lookup, not a scan: the map is built once per version)."""
        if self._product_samples is None:
            self._product_samples = {}
            for it in self.items.values():
                self._product_samples.setdefault(it.product_id, []).append(it.id)
        return [self.items[i] for i in self._product_samples.get(product_id, ())]

    def item(self, sample_id: str) -> Item | None:
        i = self._by_sample.get(sample_id)
        return None if i is None else self.items[i]

    def vector_of(self, sample_id: str) -> np.ndarray:
        i = self._by_sample.get(sample_id)
        if i is None:
            raise KeyError(sample_id)
        return self.vectors.reconstruct([i])[0]

    def attribute_names(self) -> set[str]:
        """The product attributes any indexed item has (what `filters` may name)."""
        if self._attribute_names is None:
            self._attribute_names = {a for it in self.items.values() for a in it.attributes}
        return self._attribute_names

    def _allowed(self, domains, categories, conditions: tuple[Condition, ...] = ()) -> np.ndarray | None:
        if not domains and not categories and not conditions:
            return None
        key = _filter_key(domains, categories, conditions)
        if key not in self._filter_cache:
            dom, cat = set(domains or ()), set(categories or ())
            self._filter_cache[key] = np.array(
                [i for i, it in self.items.items() if (not dom or it.domain in dom) and (not cat or it.category in cat)
                 and (not conditions or matches(conditions, it.attributes))], dtype=np.int64)
        return self._filter_cache[key]

    def count(self, domains=None, categories=None, conditions: tuple[Condition, ...] = (),
              per_product: bool = True) -> int:
        """How many items (products, with `per_product`) the filters let through."""
        key = (*_filter_key(domains, categories, conditions), per_product)
        if key not in self._count_cache:  # one scan per filter and version, not per query
            allowed = self._allowed(domains, categories, conditions)
            ids = self.items.keys() if allowed is None else allowed
            self._count_cache[key] = len({self.items[int(i)].product_id for i in ids}) if per_product else len(ids)
        return self._count_cache[key]

    @property
    def lexical(self) -> LexicalIndex:
        """BM25 over the items' texts (as saved with this version, or rebuilt after edits)."""
        if self._lexical is None:
            items = [self.items[i] for i in sorted(self.items)]
            names = [_name(it.title, it.category) for it in items]
            self._lexical = LexicalIndex.build({"name": names, "text": [it.text for it in items],
                                                "read": [it.read for it in items]}, [it.id for it in items])
        return self._lexical

    @property
    def relevance(self) -> RelevanceModel:
        """The relevance model of this index's hits: its own (record), else the packaged one."""
        if self._relevance is None:
            stored = self.record.get("relevance")
            self._relevance = RelevanceModel.from_dict(stored) if stored else RelevanceModel.packaged()
        return self._relevance

    def set_relevance(self, model: RelevanceModel) -> None:
        """Store a relevance model fitted for this index (saved with the next version)."""
        self.record["relevance"] = model.to_dict()
        self._relevance = model

    @property
    def calibrated(self) -> bool:
        """Whether hit scores are probabilities fitted for this index's embedding model."""
        return self.relevance.model_id == self.model_id

    def search(self, query: np.ndarray, k: int = 10, domains=None, categories=None, per_product: bool = True,
               model_id: str | None = None, exclude_sample: str | None = None, text: str | None = None,
               depth: int = 100, conditions: tuple[Condition, ...] = (), kind: str | None = None) -> list[Hit]:
        """Top-k hits for one query vector; with `per_product` each product appears once (its best sample). With
        `text`, hybrid: the vector ranking and the BM25 rankings of `text` by each field (`depth` samples deep, at
        least 4·k) are fused by the relevance model. `kind` of the query (text, image, video, sample) picks the
        relevance model: by default text with `text`, else image."""
        return self.query({"q": query}, {"q": text} if text and text.strip() else {}, kind or (
            "text" if text and text.strip() else "image"), k, domains=domains, categories=categories,
            conditions=conditions, per_product=per_product, model_id=model_id, exclude_sample=exclude_sample,
            depth=depth).hits

    def query(self, vectors: dict[str, np.ndarray], texts: dict[str, str], kind: str, k: int = 10, offset: int = 0,
              domains=None, categories=None, conditions: tuple[Condition, ...] = (), per_product: bool = True,
              model_id: str | None = None, exclude_sample: str | None = None, min_score: float | None = None,
              max_depth: int = 1000, depth: int = 100) -> Found:
        """A page (`offset`, `k`) of hits ranked by relevance, with the total and, when empty, why.

        `vectors`: named query vectors ("q": the query's; others, e.g. "rw", its rewriting), each ranking the
        items; `texts`: named texts, each ranked by BM25 on every lexical field. The candidates are the union of
        those rankings; the relevance model scores each from its signals (prodlens.index.relevance). With
        `min_score`, hits below it are dropped and counted out of `total`; the count looks `max_depth` hits deep at
        most (then `total_exact` is False)."""
        self._check_model(model_id)
        allowed = self._allowed(domains, categories, conditions)
        if allowed is not None and len(allowed) == 0:
            return Found([], 0, reason=self._why_nothing(domains))
        available = len(self.items) if allowed is None else len(allowed)
        wanted = max_depth + 1 if min_score is not None else offset + k + 1
        # a page's worth first; with min_score, deeper only while every hit so far still reaches it
        fetch = min(available, MAX_FETCH, max(depth, 4 * (offset + k + 1)))
        while True:
            ids, signals = self.candidates(vectors, texts, fetch, allowed, (domains, categories, conditions))
            scores = self.relevance.score(kind, signals, len(ids))
            cosines = signals.get("q_cos", np.zeros(len(ids)))
            order = np.lexsort((-cosines, -scores))
            hits = self._hits(ids[order], scores[order], cosines[order], wanted, per_product, exclude_sample)
            exhausted = fetch >= min(available, MAX_FETCH)
            below = min_score is not None and hits and hits[-1].score < min_score
            if len(hits) >= wanted or exhausted or below:
                break
            fetch = min(available, MAX_FETCH, fetch * 4)  # many samples per product: look deeper
        if min_score is not None:
            kept = [h for h in hits if h.score >= min_score]
            exact = exhausted or len(kept) < len(hits)
            total = len(kept) if exact else max_depth
            page = kept[offset:offset + k]
            reason = None
            if not kept:
                best = max((h.score for h in hits), default=0.0)
                reason = NO_RESULTS["min_score"].format(min_score=min_score, best=best)
            elif not page:
                reason = NO_RESULTS["offset"].format(offset=offset, total=total)
            return Found(page, total, exact, reason)
        total = self.count(domains, categories, conditions, per_product) - self._excluded(exclude_sample, allowed,
                                                                                            per_product)
        page = hits[offset:offset + k]
        reason = NO_RESULTS["offset"].format(offset=offset, total=total) if not page else None
        return Found(page, total, True, reason)

    def _excluded(self, sample_id: str | None, allowed, per_product: bool) -> int:
        """How many of the counted hits leaving `sample_id` out removes (its product, if no other sample of it is
        let through)."""
        item = self.item(sample_id) if sample_id else None
        if item is None or (allowed is not None and not np.isin(item.id, allowed)):
            return 0
        if not per_product:
            return 1
        others = [it.id for it in self.samples_of(item.product_id) if it.id != item.id]
        return int(not (others if allowed is None else np.isin(others, allowed).any()))

    def _why_nothing(self, domains) -> str:
        present = self._domain_counts()
        if domains and not any(d in present for d in domains):
            return NO_RESULTS["domain"].format(domains="/".join(domains), present=", ".join(sorted(present)) or
                                               "nothing")
        return NO_RESULTS["filtered"]

    def candidates(self, vectors: dict[str, np.ndarray], texts: dict[str, str], depth: int, allowed,
                    where) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(candidate item ids, their signals by name): every vector's and every text field's top `depth`."""
        rankings: dict[str, np.ndarray] = {}
        queries = {name: np.asarray(v, np.float32).reshape(1, -1) for name, v in vectors.items()}
        for name, q in queries.items():
            _, ids = self.vectors.search(q, depth, allowed, where=where)
            rankings[name] = ids[0][ids[0] >= 0]
        for name, text in texts.items():
            for fieldname, ranking in zip(self.lexical.fields, self.lexical.rankings(text, depth, allowed)):
                rankings[f"{name}_{fieldname}"] = ranking
        ids = np.unique(np.concatenate([r for r in rankings.values()] or [np.zeros(0, np.int64)]))
        ids = ids[[int(i) in self.items for i in ids]] if len(ids) else ids
        signals: dict[str, np.ndarray] = {}
        if len(ids) and queries:
            stored = self.vectors.reconstruct(ids)
            products = np.array([self.items[int(i)].product_id for i in ids])
            for name, q in queries.items():
                cos = stored @ q[0]
                signals[f"{name}_cos"] = cos
                signals[f"{name}_lead"] = cos - _best_of_others(cos, products)
        position = {int(i): n for n, i in enumerate(ids)}
        for name, ranking in rankings.items():
            if name in queries:
                continue
            rr = np.zeros(len(ids))
            for rank, i in enumerate(ranking):
                if int(i) in position:
                    rr[position[int(i)]] = 1.0 / (1 + rank)
            signals[f"{name}_rr"] = rr
        return ids, signals

    def _hits(self, ids, scores, cosines, k: int, per_product: bool, exclude: str | None) -> list[Hit]:
        hits, seen = [], set()
        for score, cosine, i in zip(scores, cosines, ids):
            item = self.items.get(int(i)) if i >= 0 else None
            if item is None or item.sample_id == exclude:
                continue
            if per_product and item.product_id in seen:
                continue
            seen.add(item.product_id)
            hits.append(Hit(item.product_id, float(score), item.domain, item.sample_id, item.title,
                            item.category, item.thumbnail, float(cosine), dict(item.attributes)))
            if len(hits) >= k:
                break
        return hits

    def stats(self) -> dict:
        return {"items": len(self.items), "products": len({it.product_id for it in self.items.values()}),
                "domains": self._domain_counts(), "categories": len(self.category_products()), "kind": self.vectors.kind,
                "dim": self.dim, "model": self.record.get("model", ""), "model_id": self.model_id,
                "version": self.record.get("version"), "tombstones": len(self.vectors.tombstones),
                "index_bytes": self.record.get("index_bytes")}


def _filter_key(domains, categories, conditions) -> tuple:
    return tuple(sorted(domains or ())), tuple(sorted(categories or ())), tuple(conditions)


def _best_of_others(cos: np.ndarray, products: np.ndarray) -> np.ndarray:
    """For each candidate, the best cosine among the candidates of other products: its lead over them is how sure
    the ranking is (positive only for the best product's samples)."""
    order = np.argsort(-cos)
    first = order[0]
    second = next((j for j in order if products[j] != products[first]), None)
    runner_up = cos[second] if second is not None else cos[first]
    return np.where(products == products[first], runner_up, cos[first])


def _name(title: str, category: str) -> str:
    """An item's name for lexical search: its title and category."""
    return " ".join(x for x in (title, category) if x)


def _store(path: Path) -> VersionedStore:
    """CURRENT names the live version directory (plain text: indexes of every release read the same)."""
    return VersionedStore(path, "CURRENT", ["v[0-9]*"], f"the index {path}",
                          encode=lambda manifest: manifest["version"] + "\n",
                          decode=lambda text: {"version": text.strip()} if text.strip() else None)


def _version_number(name: str | None) -> int:
    return int(name[1:]) if name and name[1:].isdigit() else 0


def _version_name(version: int) -> str:
    return f"v{version:06d}"


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
