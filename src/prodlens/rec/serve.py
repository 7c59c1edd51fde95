"""Serving recommendations from a trained run: its model, its item table (prodlens.rec.items) and the user histories
it was trained with. Items enter and leave the table while the run serves (`add_items`, `remove_items`, or another
process doing the same: each request first picks up a newer table version).

Top-k scores every live item for a batch of users, segment by segment (matrix product + torch.topk, seen and retired
items masked first), and merges the segments' candidates: exact by construction. bench/rec_train.py measures it
against sorting every score and against FAISS's exact inner-product index at 100k and 1M items.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .. import atomic
from ..cache import FeatureCache
from ..errors import ProdlensError
from .content import content_vectors
from .data import RecData, UserHistories, load_interactions
from .evaluate import rank_targets
from .item_graph import SAVE_INSERTED, ItemGraph, vector_checksums
from .items import MANIFEST, ItemRows, ItemTable, append_rows, create_table, update_rows
from .config import ANN_ABOVE
from .models import pad_left
from .registry import model_spec
from .train import load_rec_checkpoint

log = logging.getLogger(__name__)
ITEMS_DIR = "items"


def weights_digest(model: torch.nn.Module) -> str:
    """What the item tower's output depends on: every weight and buffer of the model."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _tower_rows(model, ids: list[str], texts: list[str], slots: np.ndarray, content: np.ndarray | None,
                removed: np.ndarray | None = None) -> ItemRows:
    """Rows for the item table (SASRec's have no content: zero-width)."""
    vectors = model.table_vectors(slots, content)
    if content is None:
        content = np.zeros((len(ids), 0), np.float32)
    return ItemRows.new(ids, texts, slots, content, vectors, removed)


def _changes_since_training(model, data: RecData):
    """Given a table's rows, those that differ from the training catalogue (items added, retired or given a new
    text), their vectors recomputed with `model`; None when there are none."""
    trained_text = dict(zip(data.item_ids, data.item_texts))

    def carry(old: ItemRows) -> ItemRows | None:
        pick = np.flatnonzero([trained_text.get(i) != text or gone
                               for i, text, gone in zip(old.ids, old.texts, old.removed)])
        if not len(pick):
            return None
        return _tower_rows(model, [old.ids[r] for r in pick], [old.texts[r] for r in pick], old.slots[pick],
                           old.content[pick], old.removed[pick])
    return carry


def save_run_data(data: RecData, run_dir: str | Path, model, content: np.ndarray | None,
                  keep_changes: bool = False) -> None:
    """The item table (the training catalogue, with its content and tower vectors) and the full user histories
    beside the checkpoint, so a run serves, and takes new items, on its own. `keep_changes` (a resumed training):
    the items added to the run since, and its removals and new texts, stay, their vectors recomputed."""
    run_dir = Path(run_dir)
    model.eval()
    rows = _tower_rows(model, data.item_ids, data.item_texts, np.arange(data.n_items), content)
    carry = _changes_since_training(model, data) if keep_changes else None
    create_table(run_dir / ITEMS_DIR, rows, weights_digest(model), carry)
    lengths = data.sequences.lengths
    kept = np.flatnonzero(lengths > 0)  # a user whose every item is hidden (a cold-start run) has nothing to serve
    offsets = np.concatenate([[0], np.cumsum(lengths[kept])]).astype(np.int64)
    items = pa.array(data.item_ids, pa.string()).take(pa.array(data.sequences.flat()))
    histories = pa.table({"user_id": pa.array(data.user_ids, pa.string()).take(pa.array(kept)),
                          "items": pa.LargeListArray.from_arrays(pa.array(offsets), items)})
    with atomic.atomic_path(run_dir / "histories.parquet") as tmp:
        pq.write_table(histories, tmp)


class Recommender:
    """A trained run, served: `recommend_user`, `recommend_history`, and the living catalogue (`add_items`,
    `remove_items`). Thread-safe; several processes may serve and write the same run."""

    def __init__(self, run_dir: str | Path, histories: Mapping[str, list[str]] | None = None,
                 cache: FeatureCache | None = None, ann_above: int | None = ANN_ABOVE):
        self.run = Path(run_dir)
        self.ann_above = ann_above
        self._ann: ItemGraph | None = None
        self._checksums: dict[tuple[str, bool], np.ndarray] = {}  # per segment (immutable): its vectors' checksums
        self.model, self.cfg, self.trained_ids = load_rec_checkpoint(self.run)
        self.spec = model_spec(self.cfg.model)
        self.tower = weights_digest(self.model)
        if not (self.run / ITEMS_DIR / MANIFEST).exists():
            self._table_from_older_run()
        self.cache = cache
        self.histories = histories if histories is not None else _saved_histories(self.run)
        self._lock = threading.RLock()
        self._stamp = None
        self.table = None
        self.refresh()

    @classmethod
    def from_run(cls, run_dir: str | Path, interactions: str | Path | None = None,
                 cache: FeatureCache | None = None, ann_above: int | None = ANN_ABOVE) -> "Recommender":
        """A run with its saved histories, or the histories of another interactions file (ids as in the table)."""
        histories = None
        if interactions is not None:
            histories = load_interactions(interactions)[0].histories()
        return cls(run_dir, histories, cache, ann_above)

    def _table_from_older_run(self) -> None:
        """Runs saved before the item table kept their catalogue in items.parquet and LEARN's content in the
        weights: the table is written once from those."""
        path = self.run / "items.parquet"
        if not path.exists():
            raise ProdlensError(f"{self.run} has no item table ({ITEMS_DIR}/{MANIFEST}) and no items.parquet")
        items = pq.read_table(path).to_pydict()
        if items["item_id"] != self.trained_ids:
            raise ProdlensError(f"{path} does not hold the catalogue {self.run} was trained with")
        content = self.model.table.numpy() if self.spec.content else None
        log.warning("%s: writing its item table from items.parquet (a run saved by an older prodlens)", self.run)
        rows = _tower_rows(self.model, items["item_id"], items["text"], np.arange(len(self.trained_ids)), content)
        create_table(self.run / ITEMS_DIR, rows, self.tower)

    # -- the living item table ------------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Pick up a newer version of the item table written by anyone; True when it changed."""
        path = self.run / ITEMS_DIR / MANIFEST
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise ProdlensError(f"{path} has gone") from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp == self._stamp:
                return False
            table = self.table.refreshed() if self.table is not None else ItemTable.open(self.run / ITEMS_DIR)
            vectors = [torch.from_numpy(s.vectors) for s in table.segments]
            if table.tower != self.tower:  # the run was trained further since the table was written
                log.warning("%s: item vectors were computed with other weights; recomputing them", self.run)
                vectors = [torch.from_numpy(self.model.table_vectors(s.slots, s.content)) for s in table.segments]
            live = torch.from_numpy(table.live)
            use_ann = self.ann_above is not None and table.n_rows >= self.ann_above
            self._ann = self._item_graph(table, vectors) if use_ann else None
            self.table, self._vectors_by_segment = table, vectors
            self._live = [live[int(a):int(b)] for a, b in zip(table.starts[:-1], table.starts[1:])]
            self._stamp = stamp
            return True

    def _item_graph(self, table: ItemTable, vectors: list[torch.Tensor]) -> ItemGraph:
        """The HNSW graph for this table version: the one this process holds, else the one saved beside the table,
        else a new one; brought in step with the table (prodlens.rec.item_graph) and saved when this process had
        to insert much of it."""
        arrays = [v.numpy() for v in vectors]
        own = table.tower == self.tower  # else the vectors were recomputed here, and so are their checksums
        checksums = []
        for segment, array in zip(table.segments, arrays):
            key = (segment.name, own)
            if key not in self._checksums:
                self._checksums[key] = vector_checksums(array)
            checksums.append(self._checksums[key])
        graph = self._ann if self._ann is not None else ItemGraph.load(self.run / ITEMS_DIR, arrays[0].shape[1])
        if graph is None:
            log.info("%s: building an HNSW graph over %d item vectors", self.run, table.n_rows)
            graph = ItemGraph.empty(arrays[0].shape[1])
        graph = graph.sync(table, arrays, checksums)
        if graph.inserted > SAVE_INSERTED * len(graph.items):
            try:
                graph.save(self.run / ITEMS_DIR)
                graph.inserted = 0
            except (OSError, ProdlensError) as e:  # a read-only run still serves; the next process builds its own
                log.warning("%s: the HNSW graph could not be saved (%s)", self.run, e)
        return graph

    def _check_writable(self) -> None:
        if not self.spec.new_items:
            raise ProdlensError(f"a {self.cfg.model} run cannot take new items: it has no content tower "
                                "(it places only items it was trained on); retrain it")
        if getattr(self.model, "legacy_content", False):
            raise ProdlensError(f"{self.run} was trained before items could be added (its checkpoint stores "
                                "standardised content only); retrain it to add items")

    def add_items(self, ids: list[str], texts: list[str], content: np.ndarray | None = None,
                  progress: bool = False) -> int:
        """New items (or new texts of existing ones) enter the catalogue: content encoder → item tower → served as
        soon as this returns, here and, at their next request, in every process serving the run. Returns the item
        table's new version."""
        self._check_writable()
        ids = [str(i).strip() for i in ids]
        if len(ids) != len(texts):
            raise ProdlensError(f"{len(ids)} item ids but {len(texts)} texts")
        for n, (item, text) in enumerate(zip(ids, texts)):
            if not item:
                raise ProdlensError(f"item {n + 1}: empty item id")
            if not str(text).strip():
                raise ProdlensError(f"item {item!r}: empty text (LEARN places a new item by its text)")
        if len(set(ids)) != len(ids):
            raise ProdlensError(f"item ids repeat: {sorted({i for i in ids if ids.count(i) > 1})[:5]}")
        if content is None:
            content = content_vectors(ids, list(texts), self.cfg.encoder, self.cache, progress=progress)
        with self._lock:
            self.refresh()
            slots = np.array([self._slot(i) for i in ids], np.int64)
        rows = _tower_rows(self.model, ids, list(texts), slots, content)
        version = append_rows(self.run / ITEMS_DIR, rows, self.tower)
        self.refresh()
        return version

    def remove_items(self, ids: list[str]) -> dict:
        """Retire items: never recommended again; histories that hold them still read them. Idempotent: an item
        retired already is not written again, and when nothing changes no new version is written. Returns
        {"version", "removed": ids retired now, "already_removed": ids that were retired before}; an id the catalogue
        never held is an error (nothing is written)."""
        self._check_writable()
        ids = list(dict.fromkeys(str(i).strip() for i in ids))
        outcome = {"removed": [], "already_removed": []}

        def retire(table: ItemTable) -> ItemRows | None:  # under the table's writer lock: nothing moves meanwhile
            unknown = [i for i in ids if i not in table.row_of]
            if unknown:
                raise ProdlensError(f"{len(unknown)} unknown item(s): {', '.join(unknown[:5])}")
            live = [i for i in ids if table.live[table.row_of[i]]]
            outcome["removed"], outcome["already_removed"] = live, [i for i in ids if i not in live]
            if not live:
                return None
            rows = np.array([table.row_of[i] for i in live], np.int64)
            return ItemRows.new(live, [table.text(r) for r in rows], table.slots(rows), table.content(rows),
                                table.vectors(rows), np.ones(len(live), bool))

        version = update_rows(self.run / ITEMS_DIR, self.tower, retire)
        self.refresh()
        return {"version": version, **outcome}

    def _slot(self, item: str) -> int:
        """An item's id-embedding slot: its own when it was in the training catalogue, else none (-1)."""
        row = self.table.row_of.get(item)
        return int(self.table.slots([row])[0]) if row is not None else -1

    @property
    def item_ids(self) -> list[str]:
        return self.table.live_ids()

    def title(self, item: str) -> str:
        row = self.table.row_of.get(item)
        return item if row is None else self._title_of_row(row)

    def _title_of_row(self, row: int) -> str:
        return self.table.text(row).split(". ")[0]

    # -- recommending ---------------------------------------------------------------------------------------------
    def history_of(self, user: str) -> list[str]:
        if user not in self.histories:
            raise KeyError(f"unknown user {user!r} (not in the interactions the model was trained with)")
        return self.histories[user]

    def recommend_user(self, user: str, k: int = 10) -> list[dict]:
        return self.recommend_history(self.history_of(user), k)

    def recommend_history(self, history: list[str], k: int = 10) -> list[dict]:
        """Top-k items after `history` (item ids, oldest first), seen items excluded; every id must be in the
        catalogue (items added since training included)."""
        return self.recommend_histories([history], k)[0]

    def recommend_histories(self, histories: list[list[str]], k: int = 10) -> list[list[dict]]:
        """Top-k after each of several histories, in one pass of the user tower and one scoring of the items (what
        a server does with the requests that arrive together)."""
        self.refresh()
        with self._lock:
            rows = []
            for n, history in enumerate(histories):
                try:
                    rows.append(self.rows_of(history))
                except ProdlensError as e:
                    raise ProdlensError(f"history {n + 1}: {e}" if len(histories) > 1 else str(e)) from None
            return self.recommend_rows(rows, k)

    def check_history(self, history: list[str]) -> None:
        """The error `recommend_history` would raise for this history (empty, or items not in the catalogue),
        without computing anything."""
        self.refresh()
        self.rows_of(history)

    def rows_of(self, history: list[str]) -> list[int]:
        if not history:
            raise ProdlensError("the history is empty")
        unknown = [i for i in history if i not in self.table.row_of]
        if unknown:
            raise ProdlensError(f"{len(unknown)} item(s) of the history are not in the catalogue: "
                                f"{', '.join(map(str, unknown[:5]))} (add them first: prodlens rec items add)")
        return [self.table.row_of[i] for i in history]

    def recommend_rows(self, histories: list[list[int]], k: int = 10) -> list[list[dict]]:
        """Top-k for a batch of histories given as item table rows (non-empty, oldest first)."""
        with self._lock, torch.inference_mode():
            users = self.user_vectors(histories)
            if self._ann is not None:
                hits = graph_top_k_unseen(self._ann, users, histories, k)
            else:
                segments = zip(self.table.starts, self._vectors_by_segment, self._live)
                hits = top_k_unseen(users, segments, histories, k)
            return [[{"item_id": self.table.item_id(r), "score": score, "title": self._title_of_row(r)}
                     for r, score in row] for row in hits]

    def user_vectors(self, histories: list[list[int]]) -> torch.Tensor:
        """User states after histories of item table rows (left-padded to the model's history length)."""
        with torch.inference_mode():
            rows = pad_left(histories, self.cfg.max_len, -1)
            pad = rows < 0
            flat = rows.clamp(min=0).view(-1).numpy()
            slots = torch.from_numpy(self.table.slots(flat)).view(rows.shape)
            slots = torch.where((slots < 0) | pad, self.model.n_items, slots)
            content = None
            if self.spec.content:
                raw = torch.from_numpy(self.table.content(flat)).view(*rows.shape, -1)
                content = self.model.standardise(raw).masked_fill(pad[..., None], 0.0)
            return self.model.user_vectors(slots, pad, content)

    def target_ranks(self, cases: list[tuple[list[str], str]], progress: bool = False) -> np.ndarray:
        """0-based rank of each (history, target) among every live item of the catalogue, history masked (the
        protocol of prodlens.rec.evaluate, on the served table)."""
        self.refresh()
        with self._lock:
            indexed = [(0, self.rows_of(h), self.rows_of([t])[0]) for h, t in cases]
            items = torch.cat(self._vectors_by_segment)
            dead = ~torch.from_numpy(self.table.live)

            def score(histories):
                scores = self.user_vectors(histories) @ items.T
                scores[:, dead] = -torch.inf
                return scores

            return rank_targets(score, indexed, progress=progress)


def _saved_histories(run_dir: Path) -> UserHistories:
    path = run_dir / "histories.parquet"
    if not path.exists():
        return UserHistories.empty()
    table = pq.read_table(path, read_dictionary=["items.list.element"])  # item ids as codes, never as strings
    lists = table.column("items").combine_chunks()
    histories = UserHistories(table.column("user_id").combine_chunks(), lists.offsets.to_numpy(), lists.values)
    del table, lists
    pa.default_memory_pool().release_unused()  # the file's read buffers go back to the OS, not to Arrow's cache
    return histories


def graph_top_k_unseen(graph: ItemGraph, users: torch.Tensor, histories: list[list[int]],
                       k: int) -> list[list[tuple[int, float]]]:
    """Approximate top-k from an HNSW graph: k + the history's length hits, the history's rows dropped."""
    depth = min(len(graph), k + max((len(set(h)) for h in histories), default=0))
    scores, rows = graph.search(users.numpy(), depth)
    out = []
    for row_scores, row_ids, history in zip(scores.tolist(), rows.tolist(), histories):
        seen = set(history)
        out.append([(r, s) for r, s in zip(row_ids, row_scores) if r >= 0 and r not in seen][:k])
    return out


def top_k_unseen(users: torch.Tensor, segments, histories: list[list[int]], k: int,
                 chunk: int = 256) -> list[list[tuple[int, float]]]:
    """Per user, the k best (row, score) pairs among live rows not in its history (scores = users @ vectors.T).
    `segments`: (first row, (n, D) vectors, (n,) bool live) for consecutive row ranges; each is scored for `chunk`
    users at a time (the score matrix stays small for any catalogue) and the segments' best k are merged."""
    segments = [(int(start), vectors, live) for start, vectors, live in segments if len(vectors)]
    out = []
    with torch.inference_mode():
        for first in range(0, len(users), chunk):
            part, part_histories = users[first:first + chunk], histories[first:first + chunk]
            best_scores, best_rows = [], []
            for start, vectors, live in segments:
                scores = part @ vectors.T
                scores[:, ~live] = -torch.inf
                for r, history in enumerate(part_histories):
                    inside = [h - start for h in history if start <= h < start + len(vectors)]
                    if inside:
                        scores[r, torch.as_tensor(inside)] = -torch.inf
                top = scores.topk(min(k, scores.shape[1]), dim=1)
                best_scores.append(top.values)
                best_rows.append(top.indices + start)
            values, rows = torch.cat(best_scores, 1), torch.cat(best_rows, 1)
            top = values.topk(min(k, values.shape[1]), dim=1)
            for rr, vv in zip(rows.gather(1, top.indices).tolist(), top.values.tolist()):
                out.append([(r, v) for r, v in zip(rr, vv) if v != -float("inf")])
    return out
