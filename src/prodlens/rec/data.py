"""Interactions and item texts → per-user chronological sequences of item indices, and the evaluation splits.

Files (TSV, CSV or Parquet; RecBole-style `name:type` headers are accepted):
- interactions, long form: user_id, item_id[, timestamp] (one row per interaction), or
  sequence form: user_id, then a column of space-separated item ids in order (e.g. UniSRec's full_sequences.tsv);
- items: item_id, then text columns (title, brand, category, description, ...), joined into one item text.
When the interactions name items by index and the items file by original id, an `*.item2index` file beside the
items file (or `item_map=`) maps one to the other.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BadRecords, ProdlensError

MAX_ITEM_TEXT = 2000


@dataclass
class RecData:
    item_ids: list[str]  # index → original item id
    item_texts: list[str]
    user_ids: list[str]
    sequences: list[list[int]]  # per user, chronological item indices
    bad: BadRecords = field(default_factory=BadRecords)
    name: str = "interactions"

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return sum(len(s) for s in self.sequences)

    def item_index(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.item_ids)}

    def summary(self) -> dict:
        lengths = [len(s) for s in self.sequences]
        return {"users": len(self.sequences), "items": self.n_items, "interactions": self.n_interactions,
                "mean_length": round(float(np.mean(lengths)), 2) if lengths else 0.0, "bad": len(self.bad)}


def _read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a TSV / CSV / Parquet file; header names lose RecBole's ':type' suffix."""
    if not path.exists():
        raise ProdlensError(f"{path} not found")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:
            raise ProdlensError(f"cannot read {path}: {e}") from e
        cols = table.to_pydict()
        header = list(cols)
        rows = [["" if cols[c][i] is None else str(cols[c][i]) for c in header] for i in range(table.num_rows)]
        return [h.split(":")[0] for h in header], rows
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ProdlensError(f"{path} is not UTF-8 text (byte {e.start})") from None
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first or path.suffix in (".tsv", ".inter", ".text") else ","
    reader = csv.reader(text.splitlines(), delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t"
                        else csv.QUOTE_MINIMAL)
    header = next(reader, None)
    if header is None:
        raise ProdlensError(f"{path} is empty")
    return [h.strip().split(":")[0] for h in header], [r for r in reader if r and any(c.strip() for c in r)]


def _column(header: list[str], names: tuple[str, ...], path: Path, default: int | None = None) -> int:
    for n in names:
        if n in header:
            return header.index(n)
    if default is not None and default < len(header):
        return default
    raise ProdlensError(f"{path}: no column named {' or '.join(names)} (columns: {', '.join(header)})")


def load_items(path: str | Path, item_map: str | Path | None = None) -> tuple[dict[str, str], BadRecords]:
    """item id → text (text columns joined with '. '). With an id map, ids are translated to the map's indices."""
    path = Path(path)
    header, rows = _read_table(path)
    bad = BadRecords()
    id_col = _column(header, ("item_id", "item", "iid", "product_id"), path, 0)
    text_cols = [i for i, h in enumerate(header) if i != id_col and h not in ("timestamp",)]
    texts: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        if len(row) <= id_col or not row[id_col].strip():
            bad.add(f"{path.name} line {line}", "no item id", "items")
            continue
        parts = [" ".join(row[i].split()) for i in text_cols if i < len(row) and row[i].strip()]
        text = ". ".join(p.rstrip(".") for p in parts)[:MAX_ITEM_TEXT]
        texts[row[id_col].strip()] = text
    mapping = _find_item_map(path, item_map)
    if mapping:
        texts = {mapping[k]: v for k, v in texts.items() if k in mapping}
    return texts, bad


def _find_item_map(items_path: Path, item_map: str | Path | None) -> dict[str, str] | None:
    """original id → index, from `item_map` or an `*.item2index` file beside the items (two columns, TSV)."""
    if item_map is None:
        found = sorted(items_path.parent.glob("*.item2index"))
        if not found:
            return None
        item_map = found[0]
    mapping = {}
    for line in Path(item_map).read_text(encoding="utf-8").splitlines():
        parts = line.split("\t") if "\t" in line else line.split(",")
        if len(parts) >= 2 and parts[0].strip():
            mapping[parts[0].strip()] = parts[1].strip()
    return mapping


def load_interactions(path: str | Path) -> tuple[dict[str, list[str]], BadRecords]:
    """user id → chronological item ids (sorted by timestamp when there is one; ties keep file order)."""
    path = Path(path)
    header, rows = _read_table(path)
    bad = BadRecords()
    user_col = _column(header, ("user_id", "user", "uid"), path, 0)
    seq_col = next((i for i, h in enumerate(header) if "seq" in h or h.endswith("_list")), None)
    sequences: dict[str, list] = {}
    if seq_col is not None and "item_id" not in header:
        for line, row in enumerate(rows, start=2):
            if len(row) <= max(user_col, seq_col):
                bad.add(f"{path.name} line {line}", f"expected {len(header)} columns, got {len(row)}", "interactions")
                continue
            items = row[seq_col].split()
            if not items:
                bad.add(f"{path.name} line {line}", "empty item sequence", "interactions")
                continue
            sequences.setdefault(row[user_col].strip(), []).extend(items)
        return sequences, bad
    item_col = _column(header, ("item_id", "item", "iid", "product_id"), path, 1)
    time_col = next((i for i, h in enumerate(header) if h in ("timestamp", "time", "ts")), None)
    timed: dict[str, list[tuple[float, int, str]]] = {}
    for line, row in enumerate(rows, start=2):
        if len(row) <= max(user_col, item_col, time_col or 0):
            bad.add(f"{path.name} line {line}", f"expected {len(header)} columns, got {len(row)}", "interactions")
            continue
        user, item = row[user_col].strip(), row[item_col].strip()
        if not user or not item:
            bad.add(f"{path.name} line {line}", "empty user or item id", "interactions")
            continue
        ts = 0.0
        if time_col is not None:
            try:
                ts = float(row[time_col])
            except ValueError:
                bad.add(f"{path.name} line {line}", f"timestamp {row[time_col]!r} is not a number", "interactions")
                continue
        timed.setdefault(user, []).append((ts, line, item))
    for user, events in timed.items():
        sequences[user] = [item for _, _, item in sorted(events)]
    return sequences, bad


def load_rec_data(interactions: str | Path, items: str | Path, item_map: str | Path | None = None,
                  min_length: int = 3) -> RecData:
    """Both files → RecData. Interactions with items that have no text are dropped (and counted); users with fewer
    than `min_length` interactions are dropped (leave-one-out needs train, validation and test items)."""
    texts, bad = load_items(items, item_map)
    raw, bad_inter = load_interactions(interactions)
    bad.extend(bad_inter)
    if not texts:
        raise ProdlensError(f"no items with text in {items}")
    unknown = 0
    used: dict[str, int] = {}
    user_ids, sequences = [], []
    for user, seq in raw.items():
        kept = [i for i in seq if i in texts]
        unknown += len(seq) - len(kept)
        if len(kept) < min_length:
            continue
        user_ids.append(user)
        sequences.append([used.setdefault(i, len(used)) for i in kept])
    if unknown:
        bad.add(str(interactions), f"{unknown} interaction(s) with items missing from {Path(items).name} dropped",
                "interactions")
    if not sequences:
        raise ProdlensError(f"no user in {interactions} has {min_length}+ interactions with known items "
                            "(do the item ids of the two files match? an *.item2index map may be needed)")
    # items that nobody interacted with still belong to the catalogue (and to full ranking)
    for item in texts:
        used.setdefault(item, len(used))
    item_ids = [None] * len(used)
    for item, idx in used.items():
        item_ids[idx] = item
    return RecData(item_ids, [texts[i] for i in item_ids], user_ids, sequences, bad,
                   name=Path(interactions).parent.name or Path(interactions).stem)


@dataclass
class Split:
    """Leave-one-out: train on each sequence without its last two items; validate on the second-to-last; test on
    the last. `cold_items`: items hidden from training altogether (the cold-start protocol)."""
    train: list[list[int]]  # training sequences (item indices)
    valid: list[tuple[int, list[int], int]]  # (user index, history, target)
    test: list[tuple[int, list[int], int]]
    cold_items: set[int] = field(default_factory=set)
    protocol: str = "leave-one-out"


def leave_one_out(data: RecData) -> Split:
    train, valid, test = [], [], []
    for u, seq in enumerate(data.sequences):
        train.append(seq[:-2])
        valid.append((u, seq[:-2], seq[-2]))
        test.append((u, seq[:-1], seq[-1]))
    return Split(train, valid, test)


def cold_start_split(data: RecData, fraction: float = 0.1, seed: int = 0) -> Split:
    """Hide a random `fraction` of items from training entirely (prodlens.rec.run trains without them, then adds them
    to the trained run). Test cases: users whose last item is hidden (history = everything before it, hidden items
    included: they exist by test time, they were just never trained on). Validation: the usual
    second-to-last item among users whose validation target is not hidden."""
    rng = np.random.default_rng(seed)
    cold = set(rng.choice(data.n_items, size=max(1, int(fraction * data.n_items)), replace=False).tolist())
    train, valid, test = [], [], []
    for u, seq in enumerate(data.sequences):
        train.append([i for i in seq[:-2] if i not in cold])
        if seq[-2] not in cold:
            valid.append((u, seq[:-2], seq[-2]))
        if seq[-1] in cold:
            test.append((u, seq[:-1], seq[-1]))
    return Split(train, valid, test, cold, protocol=f"cold-start ({fraction:.0%} of items added to the trained run)")


def without_hidden_items(data: RecData, split: Split) -> tuple[RecData, Split]:
    """The catalogue and split a model sees when `split.cold_items` do not exist yet (they are added after
    training): those items leave the catalogue, the sequences and the validation histories; no test cases."""
    keep = [i for i in range(data.n_items) if i not in split.cold_items]
    new = {old: n for n, old in enumerate(keep)}
    warm = RecData([data.item_ids[i] for i in keep], [data.item_texts[i] for i in keep], data.user_ids,
                   [[new[i] for i in s if i in new] for s in data.sequences], data.bad, data.name)
    train = [[new[i] for i in s] for s in split.train]  # the split's training sequences hold no hidden item
    valid = [(u, [new[i] for i in h if i in new], new[t]) for u, h, t in split.valid]
    return warm, Split(train, valid, [], set(), protocol=split.protocol)


def item_frequencies(sequences: list[list[int]], n_items: int) -> np.ndarray:
    counts = np.zeros(n_items, np.int64)
    for seq in sequences:
        np.add.at(counts, seq, 1)
    return counts


def long_tail_items(train: list[list[int]], n_items: int, head_share: float = 0.2) -> set[int]:
    """The bottom (1 - head_share) of items by training frequency (ties broken by index, deterministic)."""
    counts = item_frequencies(train, n_items)
    order = np.lexsort((np.arange(n_items), -counts))  # most frequent first
    head = set(order[: int(round(head_share * n_items))].tolist())
    return set(range(n_items)) - head
