"""Interactions and item texts → per-user chronological sequences of item indices, and the evaluation splits.

Files (TSV, CSV or Parquet; RecBole-style `name:type` headers are accepted):
- interactions, long form: user_id, item_id[, timestamp] (one row per interaction), or
  sequence form: user_id, then a column of space-separated item ids in order (e.g. UniSRec's full_sequences.tsv);
- items: item_id, then text columns (title, brand, category, description, ...), joined into one item text.
When the interactions name items by index and the items file by original id, an `*.item2index` file beside the
items file (or `item_map=`) maps one to the other.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BadRecords, ProdlensError
from ..rows import is_tab_separated

MAX_ITEM_TEXT = 2000


MAX_LISTED_BAD = 1000  # bad rows listed one by one; beyond that, counted


def concat_ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The indices of the ranges [starts[i], ends[i]) one after another (one array, no Python loop)."""
    lengths = np.maximum(ends - starts, 0)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    first = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return first + np.arange(total)


class Sequences:
    """Every user's chronological item indices in one array: user u's are items[starts[u]:ends[u]]. Memory is the
    arrays (8 bytes an interaction), never a Python object per interaction; `seqs[u]` is a view."""

    def __init__(self, items: np.ndarray, starts: np.ndarray, ends: np.ndarray):
        self.items = np.asarray(items, np.int64)
        self.starts, self.ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)

    @classmethod
    def from_lists(cls, sequences: list[list[int]]) -> "Sequences":
        lengths = np.array([len(s) for s in sequences], np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        items = np.concatenate([np.asarray(s, np.int64) for s in sequences]) if sequences else np.zeros(0, np.int64)
        return cls(items, offsets[:-1], offsets[1:])

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, u: int) -> np.ndarray:
        return self.items[self.starts[u]:self.ends[u]]

    def __iter__(self):
        for a, b in zip(self.starts.tolist(), self.ends.tolist()):
            yield self.items[a:b]

    @property
    def lengths(self) -> np.ndarray:
        return np.maximum(self.ends - self.starts, 0)

    @property
    def total(self) -> int:
        return int(self.lengths.sum())

    def flat(self) -> np.ndarray:
        """Every interaction's item, user after user (a copy)."""
        return self.items[concat_ranges(self.starts, self.ends)]

    def trimmed(self, drop_last: int) -> "Sequences":
        """Each sequence without its last `drop_last` items (views of the same array)."""
        return Sequences(self.items, self.starts, np.maximum(self.ends - drop_last, self.starts))

    def filtered(self, keep_item: np.ndarray, mapping: np.ndarray | None = None) -> "Sequences":
        """A compact copy keeping the items where `keep_item[item]`, renumbered by `mapping` when given."""
        idx = concat_ranges(self.starts, self.ends)
        users = np.repeat(np.arange(len(self)), self.lengths)
        items = self.items[idx]
        keep = keep_item[items]
        items, users = items[keep], users[keep]
        counts = np.bincount(users, minlength=len(self))
        offsets = np.concatenate([[0], np.cumsum(counts)])
        return Sequences(items if mapping is None else mapping[items], offsets[:-1], offsets[1:])


@dataclass
class RecData:
    item_ids: list[str]  # index → original item id
    item_texts: list[str]
    user_ids: list[str]
    sequences: Sequences  # per user, chronological item indices
    bad: BadRecords = field(default_factory=BadRecords)
    name: str = "interactions"

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return self.sequences.total

    def item_index(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.item_ids)}

    def summary(self) -> dict:
        lengths = self.sequences.lengths
        return {"users": len(self.sequences), "items": self.n_items, "interactions": self.n_interactions,
                "mean_length": round(float(lengths.mean()), 2) if len(lengths) else 0.0, "bad": len(self.bad)}


def _arrow_table(path: Path):
    """(table, rows dropped, bad text): the whole file as a pyarrow table, every column as strings; the number of rows
    the reader dropped (field count unlike the header's: `_row_names` names them by line); and a mask of the table's
    rows holding bytes that are not UTF-8 (their values are empty strings). Column names keep RecBole's ':type'
    suffix. Parsed by Arrow's multi-threaded reader: a 20M-row file takes seconds and its bytes, not a Python object
    per cell."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not path.exists():
        raise ProdlensError(f"{path} not found")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:
            raise ProdlensError(f"cannot read {path}: {e}") from e
        return table.cast(pa.schema([(f.name, pa.string()) for f in table.schema])), 0, np.zeros(len(table), bool)
    with open(path, "rb") as f:
        first = f.readline()
    if not first.strip():
        raise ProdlensError(f"{path} is empty")
    try:
        header_text = first.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ProdlensError(f"{path} line 1: the header is not UTF-8 text (byte {e.start})") from None
    tab = is_tab_separated(path, header_text)
    dropped = 0

    def skip(row) -> str:
        nonlocal dropped
        dropped += 1
        return "skip"

    names = [h.strip() for h in header_text.rstrip("\r\n").split("\t" if tab else ",")]
    convert = pacsv.ConvertOptions(column_types={n: pa.binary() for n in names},
                                   strings_can_be_null=False, quoted_strings_can_be_null=False)
    parse = pacsv.ParseOptions(delimiter="\t" if tab else ",", quote_char=False if tab else '"',
                               newlines_in_values=not tab, invalid_row_handler=skip)
    try:
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 24, column_names=names,
                                                                    skip_rows=1),
                               parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as e:
        raise ProdlensError(f"cannot read {path}: {e}") from None
    bad_text = np.zeros(len(table), bool)
    columns = []
    for column in table.columns:
        column = column.combine_chunks()
        try:
            columns.append(column.cast(pa.string()))
            continue
        except pa.ArrowInvalid:
            pass
        values = column.to_pylist()  # some bytes are not UTF-8: find the rows, keep the rest
        text = []
        for i, v in enumerate(values):
            try:
                text.append(v.decode("utf-8"))
            except UnicodeDecodeError:
                bad_text[i] = True
                text.append("")
        columns.append(pa.array(text, pa.string()))
    return pa.table(columns, names=table.column_names), dropped, bad_text


def _row_names(path: Path, rows, dropped: int) -> tuple[dict[int, str], list[tuple[str, str]]]:
    """({table row: "file line N"} for the given rows, [("file line N", problem)] for the rows the reader dropped):
    the file is read again, once, only when something is reported."""
    rows = [int(r) for r in rows]
    if path.suffix == ".parquet":
        return {r: f"{path.name} row {r + 1}" for r in rows}, []
    from ..rows import line_numbers

    lines, gone = line_numbers(path, rows, dropped=dropped > 0)
    named = {r: f"{path.name} line {lines[r]}" if r in lines else f"{path.name} data row {r + 1}" for r in rows}
    return named, [(f"{path.name} line {line}", problem) for line, problem in gone]


def _column(header: list[str], names: tuple[str, ...], path: Path, default: int | None = None) -> int:
    for n in names:
        if n in header:
            return header.index(n)
    if default is not None and default < len(header):
        return default
    raise ProdlensError(f"{path}: no column named {' or '.join(names)} (columns: {', '.join(header)})")


def load_items(path: str | Path, item_map: str | Path | None = None,
               require_text: bool = False) -> tuple[dict[str, str], BadRecords]:
    """item id → text: the text columns, whitespace collapsed and trailing dots dropped, joined with '. ' (empty ones
    skipped), at most MAX_ITEM_TEXT characters; computed by Arrow, column by column, every row's columns kept
    together. Reported by line: rows without an id (skipped), rows the reader could not split into the header's
    columns or decode (skipped), rows without text (kept, with an empty text), and an id given again: its last row
    wins, as a later `rec items add` of the id replaces its text. `require_text` (items added to a trained run, which
    places a new item by its text): rows without text are skipped instead of kept. With an id map, ids are translated
    to the map's indices."""
    import pyarrow as pa
    import pyarrow.compute as pc

    path = Path(path)
    table, dropped, bad_text = _arrow_table(path)
    header = [h.split(":")[0] for h in table.column_names]
    id_col = _column(header, ("item_id", "item", "iid", "product_id"), path, 0)
    ids = pc.utf8_trim_whitespace(table.column(id_col).combine_chunks())
    joined = None
    for i, h in enumerate(header):
        if i == id_col or h == "timestamp":
            continue
        # whitespace as Python's str.split() sees it (RE2's \\s alone misses no-break and other Unicode spaces)
        col = pc.replace_substring_regex(table.column(i).combine_chunks(), r"[\s\p{Z}\x{1c}-\x{1f}\x{85}]+", " ")
        col = pc.utf8_rtrim(pc.utf8_trim(col, characters=" "), characters=".")
        col = pc.if_else(pc.equal(pc.utf8_length(col), 0), pa.scalar(None, pa.string()), col)
        # element-wise: a row's parts stay in its row (a join that skips nulls drops rows whose parts are all null)
        joined = col if joined is None else pc.coalesce(pc.binary_join_element_wise(joined, col, ". "), joined, col)
    if joined is None:
        texts_col = [""] * len(ids)
    else:
        texts_col = pc.utf8_slice_codeunits(pc.fill_null(joined, ""), 0, MAX_ITEM_TEXT).to_pylist()
    if len(texts_col) != len(ids):
        raise AssertionError(f"{path}: {len(texts_col)} texts for {len(ids)} ids")  # the rows must stay aligned
    id_list = ids.to_pylist()
    has_id = (pc.utf8_length(ids).to_numpy(zero_copy_only=False) > 0) & ~bad_text
    last: dict[str, int] = {}
    repeated: list[tuple[int, int]] = []  # (earlier row, the row that replaces it)
    for row in np.flatnonzero(has_id).tolist():
        item = id_list[row]
        if item in last:
            repeated.append((last[item], row))
        last[item] = row
    no_text = [r for r in last.values() if not texts_col[r]]
    report = {"no_id": np.flatnonzero(~has_id & ~bad_text)[:MAX_LISTED_BAD].tolist(),
              "bad_text": np.flatnonzero(bad_text)[:MAX_LISTED_BAD].tolist(),
              "repeated": repeated[:MAX_LISTED_BAD], "no_text": no_text[:MAX_LISTED_BAD]}
    bad = BadRecords()
    if dropped or any(report.values()):
        wanted = report["no_id"] + report["bad_text"] + report["no_text"] + [r for pair in report["repeated"]
                                                                             for r in pair]
        named, gone = _row_names(path, wanted, dropped)
        for record, problem in gone[:MAX_LISTED_BAD]:
            bad.add(record, problem + ": skipped", "items")
        for r in report["bad_text"]:
            bad.add(named[r], "not valid UTF-8: skipped", "items")
        for r in report["no_id"]:
            bad.add(named[r], f"no item id ({texts_col[r][:60]!r}): skipped", "items")
        for earlier, later in report["repeated"]:
            bad.add(named[earlier], f"item id {id_list[earlier]!r} again at {named[later].split(' ', 1)[1]}: the "
                    "later row is kept", "items")
        kept = "skipped (a new item is placed by its text)" if require_text else "kept with an empty text"
        for r in report["no_text"]:
            bad.add(named[r], f"item {id_list[r]!r} has no text: {kept}", "items")
        listed = len(bad)
        total = dropped + int((~has_id).sum()) + len(repeated) + len(no_text)
        if total > listed:
            bad.add(str(path), f"{total - listed} more bad row(s) not listed", "items")
    texts = {item: texts_col[row] for item, row in last.items() if texts_col[row] or not require_text}
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


class UserHistories(Mapping):
    """user id → item ids, oldest first, held as arrays: the user ids sorted (a lookup is a binary search) and every
    history a slice of one array of item codes into the distinct item ids (an Arrow array). No Python object per user
    or interaction, so a server holds millions of users' histories at about 4 bytes an interaction."""

    def __init__(self, user_ids, offsets: np.ndarray, items):
        """`user_ids`: one per history (strings, distinct); history u is `items[offsets[u]:offsets[u + 1]]` (a
        pyarrow string array, or a dictionary array of strings as Parquet reads one without decoding it)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        ids = user_ids.to_pylist() if isinstance(user_ids, pa.Array) else user_ids
        keys = np.array([u.encode() for u in ids], dtype="S")
        self._order = np.argsort(keys, kind="stable")
        self._keys = keys[self._order]
        if len(keys) > 1 and (self._keys[1:] == self._keys[:-1]).any():
            raise ProdlensError(f"user {self._keys[1:][self._keys[1:] == self._keys[:-1]][0].decode()!r} has two "
                                "histories")
        self._offsets = np.asarray(offsets, np.int64)
        if isinstance(items, pa.ChunkedArray):
            items = items.combine_chunks()
        encoded = items if pa.types.is_dictionary(items.type) else pc.dictionary_encode(items)
        self._codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        self._item_ids = encoded.dictionary

    @classmethod
    def empty(cls) -> "UserHistories":
        import pyarrow as pa

        return cls([], np.zeros(1, np.int64), pa.array([], pa.string()))

    def _row(self, user: str) -> int | None:
        key = str(user).encode()
        i = int(np.searchsorted(self._keys, key))
        return int(self._order[i]) if i < len(self._keys) and self._keys[i] == key else None

    def __getitem__(self, user: str) -> list[str]:
        row = self._row(user)
        if row is None:
            raise KeyError(user)
        codes = self._codes[self._offsets[row]:self._offsets[row + 1]]
        return self._item_ids.take(codes).to_pylist()

    def __contains__(self, user) -> bool:
        return isinstance(user, str) and self._row(user) is not None

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self):
        return (k.decode() for k in self._keys)

    @property
    def nbytes(self) -> int:
        return self._keys.nbytes + self._order.nbytes + self._offsets.nbytes + self._codes.nbytes + \
            self._item_ids.nbytes


@dataclass
class Interactions:
    """A file's interactions, columnar, in user order (users by first appearance) and time order within a user."""
    user_ids: list[str]
    users: np.ndarray  # (n,) user index of each interaction
    items: object  # (n,) pyarrow string array: each interaction's item id

    def histories(self) -> UserHistories:
        """user id → item ids, oldest first (what a server looks users up in)."""
        ends = np.searchsorted(self.users, np.arange(len(self.user_ids)), side="right")
        return UserHistories(self.user_ids, np.concatenate([[0], ends]), self.items)


def _timestamps(column) -> tuple[np.ndarray, np.ndarray]:
    """(float seconds, valid mask): a value that is not a number is invalid."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(pc.utf8_trim_whitespace(column), pa.float64()).to_numpy(zero_copy_only=False), \
            np.ones(len(column), bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    values = column.to_pylist()
    out, ok = np.zeros(len(values)), np.ones(len(values), bool)
    for i, v in enumerate(values):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            ok[i] = False
    return out, ok & np.isfinite(out)


def load_interactions(path: str | Path) -> tuple[Interactions, BadRecords]:
    """The file's interactions, sorted by user, then timestamp (ties keep file order). Long form: user_id, item_id
    [, timestamp]; sequence form: user_id + a column of space-separated item ids in order. Bad rows (no user or item,
    a timestamp that is not a number, fields unlike the header's, bytes that are not UTF-8) are skipped and reported
    by line."""
    import pyarrow as pa
    import pyarrow.compute as pc

    path = Path(path)
    table, dropped, bad_text = _arrow_table(path)
    header = [h.split(":")[0] for h in table.column_names]
    user_col = _column(header, ("user_id", "user", "uid"), path, 0)
    users = pc.utf8_trim_whitespace(table.column(user_col).combine_chunks())
    has_user = pc.utf8_length(users).to_numpy(zero_copy_only=False) > 0
    problems: dict[int, str] = {}  # table row → why it is skipped
    for row in np.flatnonzero(bad_text).tolist():
        problems[row] = "not valid UTF-8"
    seq_col = next((i for i, h in enumerate(header) if "seq" in h or h.endswith("_list")), None)
    if seq_col is not None and "item_id" not in header:
        lists = pc.utf8_split_whitespace(table.column(seq_col).combine_chunks())
        empty = pc.list_value_length(lists).to_numpy(zero_copy_only=False) == 0
        for row in np.flatnonzero((empty | ~has_user) & ~bad_text).tolist():
            problems[row] = "no user id" if not has_user[row] else "empty item sequence"
        keep_rows = pa.array(~bad_text & has_user)
        lists, users = lists.filter(keep_rows), users.filter(keep_rows)
        items = pc.list_flatten(lists)
        users = users.take(pc.list_parent_indices(lists))
        times = np.arange(len(items), dtype=np.float64)  # file order
        valid = np.ones(len(items), bool)
    else:
        item_col = _column(header, ("item_id", "item", "iid", "product_id"), path, 1)
        items = pc.utf8_trim_whitespace(table.column(item_col).combine_chunks())
        has_item = pc.utf8_length(items).to_numpy(zero_copy_only=False) > 0
        valid = has_user & has_item & ~bad_text
        for row in np.flatnonzero(~(has_user & has_item) & ~bad_text).tolist():
            problems[row] = "no user id" if not has_user[row] else "no item id"
        time_col = next((i for i, h in enumerate(header) if h in ("timestamp", "time", "ts")), None)
        times = np.zeros(len(items))
        if time_col is not None:
            times, ok = _timestamps(table.column(time_col).combine_chunks())
            values = table.column(time_col)
            for row in np.flatnonzero(valid & ~ok).tolist():
                problems[row] = f"timestamp {values[row].as_py()!r} is not a number"
            valid &= ok
    bad = BadRecords()
    if dropped or problems:
        listed = sorted(problems)[:MAX_LISTED_BAD]
        named, gone = _row_names(path, listed, dropped)
        for record, problem in gone[:MAX_LISTED_BAD]:
            bad.add(record, problem + ": skipped", "interactions")
        for row in listed:
            bad.add(named[row], problems[row] + ": skipped", "interactions")
        if dropped + len(problems) > len(bad):
            bad.add(str(path), f"{dropped + len(problems) - len(bad)} more bad row(s) not listed", "interactions")
    keep = pa.array(valid)
    users, items, times = users.filter(keep), items.filter(keep), times[valid]
    encoded = users.dictionary_encode()  # indices in order of first appearance
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.lexsort((times, codes))  # stable: equal timestamps keep file order
    return Interactions(encoded.dictionary.to_pylist(), codes[order], items.take(pa.array(order))), bad


def load_rec_data(interactions: str | Path, items: str | Path, item_map: str | Path | None = None,
                  min_length: int = 3) -> RecData:
    """Both files → RecData. Interactions with items that have no text are dropped (and counted); users with fewer
    than `min_length` interactions are dropped (leave-one-out needs train, validation and test items). Items are
    numbered by first appearance in the users' sequences, then the catalogue's never-bought items in file order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    texts, bad = load_items(items, item_map)
    inter, bad_inter = load_interactions(interactions)
    bad.extend(bad_inter)
    if not texts:
        raise ProdlensError(f"no items with text in {items}")
    catalogue = list(texts)
    index = pc.index_in(inter.items, value_set=pa.array(catalogue, pa.string()))
    known = index.is_valid().to_numpy(zero_copy_only=False)
    unknown = int((~known).sum())
    if unknown:
        bad.add(str(interactions), f"{unknown} interaction(s) with items missing from {Path(items).name} dropped",
                "interactions")
    users = inter.users[known]
    item_idx = index.filter(pa.array(known)).to_numpy(zero_copy_only=False).astype(np.int64)
    enough = np.bincount(users, minlength=len(inter.user_ids)) >= min_length
    kept = enough[users]
    users, item_idx = users[kept], item_idx[kept]
    if len(users) == 0:
        raise ProdlensError(f"no user in {interactions} has {min_length}+ interactions with known items "
                            "(do the item ids of the two files match? an *.item2index map may be needed)")
    used, first = np.unique(item_idx, return_index=True)
    never = np.setdiff1d(np.arange(len(catalogue)), used)
    order = np.concatenate([used[np.argsort(first)], never])  # new index → catalogue index
    renumber = np.empty(len(catalogue), np.int64)
    renumber[order] = np.arange(len(catalogue))
    counts = np.bincount(users, minlength=len(inter.user_ids))[enough]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    item_ids = [catalogue[i] for i in order.tolist()]
    user_ids = [u for u, ok in zip(inter.user_ids, enough.tolist()) if ok]
    return RecData(item_ids, [texts[i] for i in item_ids], user_ids,
                   Sequences(renumber[item_idx], offsets[:-1], offsets[1:]), bad,
                   name=Path(interactions).parent.name or Path(interactions).stem)


@dataclass
class Split:
    """Leave-one-out: train on each sequence without its last two items; validate on the second-to-last; test on
    the last. `cold_items`: items hidden from training altogether (the cold-start protocol)."""
    train: Sequences  # training sequences (item indices)
    valid: list[tuple[int, np.ndarray, int]]  # (user index, history, target)
    test: list[tuple[int, np.ndarray, int]]
    cold_items: set[int] = field(default_factory=set)
    protocol: str = "leave-one-out"


def _cases(seqs: Sequences, drop_last: int, users: np.ndarray) -> list[tuple[int, np.ndarray, int]]:
    """(user, the items before the target, the target) with the target `drop_last` items from the end."""
    starts, ends = seqs.starts[users], seqs.ends[users] - drop_last
    targets = seqs.items[ends]
    return [(u, seqs.items[a:b], t) for u, a, b, t in zip(users.tolist(), starts.tolist(), ends.tolist(),
                                                           targets.tolist())]


def leave_one_out(data: RecData) -> Split:
    every = np.arange(len(data.sequences))
    return Split(data.sequences.trimmed(2), _cases(data.sequences, 2, every), _cases(data.sequences, 1, every))


def cold_start_split(data: RecData, fraction: float = 0.1, seed: int = 0) -> Split:
    """Hide a random `fraction` of items from training entirely (prodlens.rec.run trains without them, then adds them
    to the trained run). Test cases: users whose last item is hidden (history = everything before it, hidden items
    included: they exist by test time, they were just never trained on). Validation: the usual
    second-to-last item among users whose validation target is not hidden."""
    rng = np.random.default_rng(seed)
    cold = set(rng.choice(data.n_items, size=max(1, int(fraction * data.n_items)), replace=False).tolist())
    hidden = np.zeros(data.n_items, bool)
    hidden[list(cold)] = True
    seqs = data.sequences
    train = seqs.trimmed(2).filtered(~hidden)
    valid = _cases(seqs, 2, np.flatnonzero(~hidden[seqs.items[seqs.ends - 2]]))
    test = _cases(seqs, 1, np.flatnonzero(hidden[seqs.items[seqs.ends - 1]]))
    return Split(train, valid, test, cold, protocol=f"cold-start ({fraction:.0%} of items added to the trained run)")


def without_hidden_items(data: RecData, split: Split) -> tuple[RecData, Split]:
    """The catalogue and split a model sees when `split.cold_items` do not exist yet (they are added after
    training): those items leave the catalogue, the sequences and the validation histories; no test cases."""
    keep = np.ones(data.n_items, bool)
    keep[list(split.cold_items)] = False
    new = np.cumsum(keep) - 1  # old index → new index (for kept items)
    warm = RecData([data.item_ids[i] for i in np.flatnonzero(keep)], [data.item_texts[i] for i in np.flatnonzero(keep)],
                   data.user_ids, data.sequences.filtered(keep, new), data.bad, data.name)
    valid = [(u, new[h[keep[h]]], int(new[t])) for u, h, t in split.valid]
    return warm, Split(split.train.filtered(keep, new), valid, [], set(), protocol=split.protocol)


def item_frequencies(sequences: Sequences, n_items: int) -> np.ndarray:
    return np.bincount(sequences.flat(), minlength=n_items).astype(np.int64)


def long_tail_items(train: Sequences, n_items: int, head_share: float = 0.2) -> set[int]:
    """The bottom (1 - head_share) of items by training frequency (ties broken by index, deterministic)."""
    counts = item_frequencies(train, n_items)
    order = np.lexsort((np.arange(n_items), -counts))  # most frequent first
    head = set(order[: int(round(head_share * n_items))].tolist())
    return set(range(n_items)) - head
