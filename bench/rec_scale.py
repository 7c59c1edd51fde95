"""The recommender's data path and training step at industrial size, against today's path in the same run.

A generated catalogue: N items with text (brand, category, model words) and M interactions (power-law item
popularity, Zipf exponent 1.1; session lengths lognormal around 10, at least 3), written as TSV like a real export.

1. Loading (`load_rec_data`), baseline: the row-by-row loader of the previous release (csv rows → a dict of
   per-user Python lists; copied below as `baseline_load`): seconds and peak memory (RSS) of each, measured in a
   fresh process, on the first `--baseline-interactions` rows and on all of them.
2. One LEARN training step (the default configuration: uniform sampled softmax, 256 negatives a position, d 128,
   id embeddings) on content vectors memory-mapped from disk (random vectors: the encoder is not what is measured),
   baseline: an earlier release's item tower, which ran on every training item each step; against it the item
   tower on the step's items only, the same loss with its draws shared by the step (`loss="shared"`), and LEARN's
   in-batch sampled softmax (the batch's next items as negatives), each with Adam over the whole id table (dense,
   the previous release) and with the id table updated lazily (the rows the step looked up; the default from
   100,000 items, prodlens.rec.optim); minutes per epoch. Each step includes the trainer's gradient clipping.

    python bench/rec_scale.py [--items 1000000] [--interactions 20000000] [--steps 20]
        [--no-training | --no-loading] [--out bench-results/rec-scale]
"""
from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

WORDS = ("serum cream lipstick mascara shampoo toner cleanser balm polish gel oil mask scrub lotion spray powder "
         "primer liner blush gloss").split()
BRANDS = [f"brand{b}" for b in range(5000)]


def generate(out: Path, n_items: int, n_interactions: int, seed: int = 0) -> tuple[Path, Path]:
    """items.tsv and interactions.tsv (user_id, item_id, timestamp), written in chunks (bounded memory)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    items, inter = out / "items.tsv", out / "interactions.tsv"
    if items.exists() and inter.exists():
        return inter, items
    with open(items, "w") as f:
        f.write("item_id\ttitle\tbrand\tcategory\n")
        for start in range(0, n_items, 100_000):
            ids = np.arange(start, min(n_items, start + 100_000))
            w = rng.integers(0, len(WORDS), (len(ids), 3))
            b = rng.integers(0, len(BRANDS), len(ids))
            f.writelines(f"i{i}\t{WORDS[x]} {WORDS[y]} no. {i % 997}\t{BRANDS[k]}\t{WORDS[z]}\n"
                         for i, (x, y, z), k in zip(ids.tolist(), w.tolist(), b.tolist()))
    # popularity: a random permutation of Zipf ranks, so popular items are spread over the id space
    ranks = np.arange(1, n_items + 1, dtype=np.float64)
    weights = ranks ** -1.1
    cdf = np.cumsum(weights / weights.sum())
    shuffled = rng.permutation(n_items)
    written, user = 0, 0
    with open(inter, "w") as f:
        f.write("user_id\titem_id\ttimestamp\n")
        while written < n_interactions:
            lengths = np.maximum(3, rng.lognormal(np.log(8), 0.6, 100_000).astype(np.int64))
            lengths = lengths[np.cumsum(lengths) <= n_interactions - written] if written + lengths.sum() > \
                n_interactions else lengths
            if len(lengths) == 0:
                break
            total = int(lengths.sum())
            picks = shuffled[np.minimum(np.searchsorted(cdf, rng.random(total)), n_items - 1)]
            users = np.repeat(np.arange(user, user + len(lengths)), lengths)
            times = 1_600_000_000 + rng.integers(0, 10 ** 8, total)
            f.writelines(f"u{u}\ti{i}\t{t}\n" for u, i, t in zip(users.tolist(), picks.tolist(), times.tolist()))
            written, user = written + total, user + len(lengths)
    return inter, items


def baseline_load(interactions: Path, items: Path, limit: int, min_length: int = 3):
    """The previous release's loader, row by row into Python objects (kept here as the baseline)."""
    with open(items, encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        texts = {r[0]: ". ".join(" ".join(c.split()) for c in r[1:] if c.strip()) for r in reader}
    timed: dict[str, list] = {}
    with open(interactions, encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        for line, row in enumerate(reader, start=2):
            if line - 1 > limit:
                break
            timed.setdefault(row[0], []).append((float(row[2]), line, row[1]))
    used: dict[str, int] = {}
    sequences = []
    for user, events in timed.items():
        kept = [item for _, _, item in sorted(events) if item in texts]
        if len(kept) >= min_length:
            sequences.append([used.setdefault(i, len(used)) for i in kept])
    return len(sequences), sum(len(s) for s in sequences)


def measure_load(path: str, interactions: str, items: str, limit: int) -> dict:
    """Run in a fresh process: seconds and peak RSS of one loader, prodlens already imported (both loaders pay the
    same imports; `peak_gib` is the whole process's high-water mark, `data_gib` what loading added to it)."""
    from prodlens.rec import load_rec_data

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if path == "baseline":
        users, total = baseline_load(Path(interactions), Path(items), limit)
    else:
        data = load_rec_data(interactions, items)
        users, total = len(data.user_ids), data.n_interactions
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    return {"seconds": seconds, "peak_gib": peak / 1024 ** 2, "data_gib": (peak - before) / 1024 ** 2,
            "users": users, "interactions": total}


def load_in_process(path: str, interactions: Path, items: Path, limit: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--measure-load", path, str(interactions), str(items),
                           str(limit)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def training_rows(data, out: Path, steps: int) -> list[tuple]:
    """Seconds per step of LEARN's default training step, item tower on the step's items vs on every item."""
    import torch

    from prodlens.rec import RecConfig
    from prodlens.rec.data import leave_one_out
    from prodlens.rec.registry import new_model
    from prodlens.rec.optim import RecOptimizer
    from prodlens.rec.train import Windows, next_item_loss

    content_path = out / "content.npy"
    if not content_path.exists():
        mm = np.lib.format.open_memmap(content_path, mode="w+", dtype=np.float32, shape=(data.n_items, 384))
        rng = np.random.default_rng(1)
        for start in range(0, data.n_items, 100_000):
            mm[start:start + 100_000] = rng.standard_normal((min(100_000, data.n_items - start), 384))
        mm.flush()
        del mm
    content = np.load(content_path, mmap_mode="r")
    cfg = RecConfig()
    windows = Windows(leave_one_out(data).train, cfg.max_len)
    trained = windows.trained_items(data.n_items)
    candidates = torch.from_numpy(np.flatnonzero(trained))
    model = new_model(cfg, data.n_items, content, trained)
    dense = replace(cfg, lazy_ids_above=data.n_items + 1)
    rows = []
    for name, all_items, step_cfg in (
            ("uniform softmax, item tower on every training item (baseline: an earlier release)", True, dense),
            ("uniform softmax, item tower on the step's items, dense Adam", False, dense),
            ("uniform softmax, item tower on the step's items, lazy id table", False, cfg),
            ("256 uniform draws shared by the step ('shared'), dense Adam", False, replace(dense, loss="shared")),
            ("256 uniform draws shared by the step ('shared'), lazy id table", False, replace(cfg, loss="shared")),
            ("in-batch sampled softmax (LEARN's; 1,024 shared negatives), dense Adam", False,
             replace(dense, loss="sampled")),
            ("in-batch sampled softmax, lazy id table", False, replace(cfg, loss="sampled"))):
        optimizer = RecOptimizer(model, step_cfg.lr, step_cfg.weight_decay, step_cfg.lazy_ids_above)
        rng = np.random.default_rng(0)
        batches = windows.batches(cfg.batch_size, rng)
        model.train()
        times, positions = [], 0
        for step in range(steps + 1):
            rows_ = next(batches)
            seqs = windows.batch(rows_, model.n_items)
            start = time.perf_counter()
            if all_items:
                loss = _today_uniform_loss(model, seqs, cfg, rng, candidates)
            else:
                loss = next_item_loss(model, seqs, step_cfg, rng, candidates, full=False)
            optimizer.zero_grad()
            loss.backward()
            optimizer.clip_gradients(5.0)
            optimizer.step()
            if step:  # the first step warms up
                times.append(time.perf_counter() - start)
                positions += windows.positions(rows_)
        per_step = float(np.mean(times))
        epoch_steps = -(-len(windows) // cfg.batch_size)
        rows.append((name, per_step, positions / sum(times), per_step * epoch_steps / 60))
    return rows


def _today_uniform_loss(model, seqs, cfg, rng, candidates):
    """The previous release's uniform sampled softmax: the item tower over every training item, every step."""
    import torch
    import torch.nn.functional as F

    n = model.n_items
    inputs, targets = seqs[:, :-1], seqs[:, 1:]
    valid = (inputs != n) & (targets != n)
    users, wanted = model.states(inputs)[valid], targets[valid]
    table = model.item_vectors(candidates)
    positive = torch.searchsorted(candidates, wanted)
    drawn = torch.from_numpy(rng.integers(0, len(candidates), (len(wanted), cfg.negatives)))
    columns = torch.cat([positive[:, None], drawn], 1)
    logits = model.logit_scale() * torch.einsum("md,mkd->mk", users, table[columns])
    hit = torch.cat([torch.zeros(len(wanted), 1, dtype=torch.bool), drawn == positive[:, None]], 1)
    return F.cross_entropy(logits.masked_fill(hit, -torch.inf), torch.zeros(len(wanted), dtype=torch.long))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure-load":
        print(json.dumps(measure_load(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--interactions", type=int, default=20_000_000)
    ap.add_argument("--baseline-interactions", type=int, default=2_000_000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--no-training", action="store_true", help="the loading table only")
    ap.add_argument("--no-loading", action="store_true", help="the training table only")
    ap.add_argument("--out", type=Path, default=Path("bench-results") / "rec-scale")
    args = ap.parse_args()
    console = Console(width=160)
    data_dir = args.out / f"data-{args.items}-{args.interactions}"
    start = time.perf_counter()
    inter, items = generate(data_dir, args.items, args.interactions)
    console.print(f"data: {data_dir} ({time.perf_counter() - start:.0f} s)", markup=False)

    small = data_dir / f"interactions-{args.baseline_interactions}.tsv"
    if not small.exists():
        with open(inter) as src, open(small, "w") as dst:
            for n, line in enumerate(src):
                if n > args.baseline_interactions:
                    break
                dst.write(line)
    loads = []
    for size, path in () if args.no_loading else ((args.baseline_interactions, small), (args.interactions, inter)):
        loads += [("baseline: row-by-row Python loader", size, load_in_process("baseline", path, items, size)),
                  ("columnar loader", size, load_in_process("columnar", path, items, size))]
    table = Table(title=f"loading {args.items:,} items with text and their interactions (fresh process each)",
                  title_justify="left")
    for col in ("loader", "interactions", "seconds", "peak GiB (process)", "GiB added by loading", "users kept",
                "vs baseline (time / memory)"):
        table.add_column(col, justify="left" if col == "loader" else "right")
    for n, (name, size, r) in enumerate(loads):
        if "error" in r:
            table.add_row(name, f"{size:,}", "failed", r["error"][:60], "", "", "")
            continue
        base = loads[n - 1][2] if n % 2 else None  # the baseline row just above, same size
        ratio = f"{base['seconds'] / r['seconds']:.1f}x faster / {base['data_gib'] / r['data_gib']:.1f}x less" \
            if base and "error" not in base else "-"
        table.add_row(name, f"{size:,}", f"{r['seconds']:.1f}", f"{r['peak_gib']:.2f}", f"{r['data_gib']:.2f}",
                      f"{r['users']:,}", ratio)
    if loads:
        console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"items": args.items, "interactions": args.interactions,
               "load": [{"loader": n, "interactions": s, **r} for n, s, r in loads]}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    if args.no_training:
        return

    from prodlens.rec import load_rec_data

    data = load_rec_data(inter, items)
    train = training_rows(data, args.out, args.steps)
    table = Table(title=f"one LEARN training step (default configuration), {data.n_items:,} items, content "
                        "memory-mapped; baseline: an earlier release's item tower", title_justify="left")
    for col in ("loss and item tower", "s / step", "samples/s", "minutes / epoch", "vs baseline"):
        table.add_column(col, justify="left" if col == "loss and item tower" else "right")
    for name, per_step, sps, minutes in train:
        table.add_row(name, f"{per_step:.3f}", f"{sps:,.0f}", f"{minutes:,.0f}", f"{train[0][1] / per_step:.1f}x")
    console.print(table)
    results["training"] = [{"item_tower": n, "s_per_step": p, "samples_per_s": sps, "minutes_per_epoch": m}
                           for n, p, sps, m in train]
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    console.print(f"results: {args.out / 'results.json'}", markup=False)


if __name__ == "__main__":
    main()
