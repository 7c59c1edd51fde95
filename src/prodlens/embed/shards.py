"""Embedding a manifest in shards, by one process or many (`torchrun --nproc_per_node N [--nnodes M] -m prodlens
embed manifest --root M --out DIR`).

Shards are fixed ranges of `shard_rows` rows of samples.parquet (the selection is applied inside each), so the plan
depends on the manifest and the shard size only, never on how many processes run it: rank r of W embeds shards
r, r + W, r + 2W, ... and writes each as `DIR/shard-NNNNN.parquet` atomically. A shard file that exists is done, so a
crashed or stopped run resumes where it was, with any number of processes; `DIR/run.json` pins the model and the
selection, and a resume with another one is refused. When every shard is there, rank 0 writes `DIR/shards.json`
(the manifest of shards: file, rows and bad records of each).

The feature cache is one SQLite file per shard (`DIR/cache/shard-NNNNN.sqlite`), written by the one process that
owns the shard: nothing is shared between processes or nodes (one SQLite file behind many writers, or on a network
file system, serialises them and can corrupt), a crash inside a shard keeps what that shard had encoded, and the
caches of a finished run make re-embedding with other fusion settings cheap. `cache=False` skips them.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from .. import atomic
from ..catalog import ManifestView
from ..catalog.manifest import samples_from_rows
from ..distributed import barrier
from ..errors import BadRecords, ProdlensError
from ..progress import progress_bar
from ..runs import config_changes
from ..cache import FeatureCache
from .config import SHARD_ROWS
from .embedder import model_id
from .encoder import ProductEncoder
from .store import Embeddings


@dataclass
class ShardRun:
    out: Path
    shards: int  # in the plan
    done_here: list[int]  # shards this process embedded now
    skipped: int  # shards this process found done already
    samples_here: int
    bad_here: int
    complete: bool  # every shard of the plan is on disk (shards.json written)


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.parquet"


def embed_manifest(view: ManifestView, encoder: ProductEncoder, out_dir: str | Path, shard_rows: int = SHARD_ROWS,
                   batch_rows: int = 256, rank: int = 0, world: int = 1, cache: bool = True,
                   progress: bool = True) -> ShardRun:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_shards = max(1, math.ceil(view.total_rows / shard_rows))
    _pin_run(out, {"model_id": _model_id(encoder), "model": encoder.name, "manifest": str(view.dir.resolve()),
                   "manifest_rows": view.total_rows, "split": view.split, "domains": list(view.domains or []),
                   "shard_rows": shard_rows, "shards": n_shards}, rank)
    mine = list(range(rank, n_shards, world))
    todo = [i for i in mine if not (out / shard_name(i)).exists()]
    samples_here = bad_here = 0
    with progress_bar(len(todo), f"embedding shards (rank {rank} of {world})", enabled=progress) as advance:
        for index in todo:
            shard_encoder = encoder.with_cache(FeatureCache(out / "cache" / f"shard-{index:05d}.sqlite")
                                               if cache else FeatureCache(None))
            emb = _embed_shard(view, shard_encoder, index, shard_rows, batch_rows)
            emb.meta.update({"shard": index, "shard_rows": shard_rows})
            emb.save(out / shard_name(index))
            samples_here += len(emb)
            bad_here += len(emb.bad)
            advance(1)
    barrier()
    complete = all((out / shard_name(i)).exists() for i in range(n_shards))
    if rank == 0 and complete:
        _write_shard_manifest(out, n_shards)
    return ShardRun(out, n_shards, todo, len(mine) - len(todo), samples_here, bad_here, complete)


def _embed_shard(view: ManifestView, encoder: ProductEncoder, index: int, shard_rows: int,
                 batch_rows: int) -> Embeddings:
    start = index * shard_rows
    parts = []
    for table in view.iter_range(start, start + shard_rows, batch_rows):
        bad = BadRecords()
        samples = samples_from_rows(table.to_pylist(), bad)
        catalog = view.catalog_of(samples, bad)
        parts.append(encoder.embed_catalog(catalog, progress=False))
    meta = {"model": encoder.name, "signature": encoder.signature(), "model_id": _model_id(encoder),
            "catalog": view.name}
    return Embeddings.concat(parts, meta) if parts else Embeddings([], [], [], [], _empty(), meta)


def _empty():
    return np.zeros((0, 0), np.float32)


def _model_id(encoder: ProductEncoder) -> str:
    return model_id(encoder.signature())


def _pin_run(out: Path, run: dict, rank: int) -> None:
    """The first process to start a run writes run.json; every later start must be the same run."""
    path = out / "run.json"
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        changes = config_changes(saved, run, ignore=("model",))  # a display name; model_id is the identity
        if changes:
            raise ProdlensError(f"{out} holds shards of another embedding run (" + "; ".join(changes[:6]) +
                                "): use another --out, or the same model and selection to resume")
    elif rank == 0:
        atomic.write_json(path, run)


def _write_shard_manifest(out: Path, n_shards: int) -> None:
    shards, rows, bad = [], 0, 0
    for i in range(n_shards):
        meta = pq.ParquetFile(out / shard_name(i)).metadata
        info = json.loads((meta.metadata or {}).get(b"prodlens", b"{}"))
        n_bad = len(info.get("bad_records", []))
        shards.append({"shard": i, "file": shard_name(i), "rows": meta.num_rows, "bad_records": n_bad})
        rows += meta.num_rows
        bad += n_bad
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    atomic.write_json(out / "shards.json", {**run, "rows": rows, "bad_records": bad, "files": shards})


def load_shards(path: Path) -> Embeddings:
    """All shards of a finished run as one table (for catalogues that fit in memory; stream `shards.json`'s files
    one at a time otherwise)."""
    manifest = path / "shards.json"
    if not manifest.exists():
        raise ProdlensError(f"{path} has no shards.json: the sharded embedding run is not finished (run it again "
                            "with the same settings to resume)")
    info = json.loads(manifest.read_text(encoding="utf-8"))
    parts = [Embeddings.load(path / f["file"]) for f in info["files"]]
    return Embeddings.concat(parts)
