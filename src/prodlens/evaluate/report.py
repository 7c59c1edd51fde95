"""Results for people: a rich table in the terminal and a Markdown report with PNG plots."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

# the object API renders without pyplot: no global backend switch for the user's own plots
from matplotlib.figure import Figure
from PIL import Image
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import atomic
from .runner import EvalResult
from ..progress import terminal_console

ZERO_SHOT_NOTE = (
    "Zero-shot embeddings come from separately pretrained encoders (an ImageNet CNN and a sentence encoder). "
    "No image-text aligned (CLIP-style) weights are available offline, so text-to-image matching goes through "
    "the image model's ImageNet class names (ConSE) and is weak; the training stage learns the alignment.")


def results_table(result: EvalResult, title: str | None = None) -> Table:
    table = Table(title=escape(title or f"{result.catalog} {result.split or ''} — {result.model}"), title_justify="left")
    for col in ("direction", "R@1", "R@5", "R@10", "mAP", "queries", "gallery"):
        table.add_column(col, justify="right" if col != "direction" else "left")
    for r in result.directions:
        m = r.metrics
        table.add_row(f"{r.short_name} ({r.name})", *(f"{m.get(k, float('nan')):.3f}" for k in ("R@1", "R@5", "R@10", "mAP")),
                      str(r.n_queries), str(r.n_gallery))
    for domain, acc in result.one_shot.items():
        table.add_row(f"one-shot cls ({domain})", f"{acc['accuracy']:.3f}", "", "", "", str(acc["n_queries"]),
                      f"{acc['n_classes']} cls")
    return table


def variants_table(result: EvalResult) -> Table | None:
    if not result.variants:
        return None
    names = [r.name for r in result.directions]
    table = Table(title="Embedding variants (R@1 / mAP)", title_justify="left")
    table.add_column("variant", no_wrap=True)
    for r in result.directions:
        table.add_column(r.short_name, justify="right")
    for vname, v in result.variants.items():
        m = v.metrics()
        table.add_row(vname, *(f"{m[n]['R@1']:.3f} / {m[n]['mAP']:.3f}" if n in m else "-" for n in names))
    return table


def print_results(result: EvalResult, console: Console | None = None) -> None:
    console = console or terminal_console()
    console.print(results_table(result))
    vt = variants_table(result)
    if vt is not None:
        console.print(vt)
    if len(result.bad):
        console.print(f"[yellow]{len(result.bad)} record(s) skipped:[/yellow]")
        for b in list(result.bad)[:20]:
            console.print(f"  [yellow]-[/yellow] {escape(str(b))}")
        if len(result.bad) > 20:
            console.print(f"  ... and {len(result.bad) - 20} more (see the report)")


def plot_recall_curves(result: EvalResult, path: Path) -> Path:
    fig = Figure(figsize=(6, 4), dpi=110)
    ax = fig.subplots()
    for r in result.directions:
        ks = range(1, len(r.recall_curve) + 1)
        ax.plot(ks, r.recall_curve, marker="o", markersize=3, label=f"{r.short_name} ({r.name})")
    ax.set_xlabel("K")
    ax.set_ylabel("Recall@K")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Cross-domain retrieval: Recall@K")
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def plot_examples(result: EvalResult, direction_index: int, query_ids: list[str], query_products: list[str],
                  gallery_ids: list[str], gallery_products: list[str], thumbnail: Callable[[str], Image.Image | None],
                  path: Path, n_rows: int = 6) -> Path | None:
    """A grid: each row a query and its top-5 results, correct results framed green, wrong ones red."""
    r = result.directions[direction_index]
    if r.top_indices is None or len(r.query_rows) == 0:
        return None
    # Show a mix of successes and failures, so the grid says something about both.
    hits = [i for i in range(len(r.query_rows)) if r.hits_at_1[i]]
    misses = [i for i in range(len(r.query_rows)) if not r.hits_at_1[i]]
    chosen = (hits[: n_rows // 2] + misses[: n_rows - n_rows // 2])
    chosen += [i for i in hits[n_rows // 2:] + misses[n_rows - n_rows // 2:]][: n_rows - len(chosen)]
    cols = 1 + r.top_indices.shape[1]
    fig = Figure(figsize=(1.9 * cols, 2.0 * len(chosen)), dpi=90)
    axes = fig.subplots(len(chosen), cols, squeeze=False)
    for row, i in enumerate(chosen):
        q = r.query_rows[i]
        panels = [(query_ids[q], query_products[q], None)]
        panels += [(gallery_ids[g], gallery_products[g], gallery_products[g] == query_products[q])
                   for g in r.top_indices[i]]
        for col, (sid, pid, ok) in enumerate(panels):
            ax = axes[row][col]
            img = thumbnail(sid)
            if img is not None:
                ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            color = "black" if ok is None else ("green" if ok else "red")
            for spine in ax.spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(3 if ok is not None else 1)
            label = ("query: " if ok is None else f"#{col} ") + pid
            ax.set_title(label[:28], fontsize=7, color=color)
    fig.suptitle(f"{r.short_name}: queries (left) and their top-{cols - 1} results", fontsize=9)
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _md_table(result: EvalResult) -> str:
    lines = ["| direction | R@1 | R@5 | R@10 | mAP | queries | gallery |", "|---|---|---|---|---|---|---|"]
    for r in result.directions:
        m = r.metrics
        lines.append(f"| {r.short_name} ({r.name}) | {m['R@1']:.3f} | {m['R@5']:.3f} | {m['R@10']:.3f} | "
                     f"{m['mAP']:.3f} | {r.n_queries} | {r.n_gallery} |")
    if result.one_shot:
        lines += ["", "| one-shot classification | accuracy | ± std | classes | queries |", "|---|---|---|---|---|"]
        for d, a in result.one_shot.items():
            lines.append(f"| {d} | {a['accuracy']:.3f} | {a['std']:.3f} | {a['n_classes']} | {a['n_queries']} |")
    return "\n".join(lines)


def write_report(result: EvalResult, out_dir: str | Path, embeddings=None,
                 thumbnail: Callable[[str], Image.Image | None] | None = None, title: str = "prodlens evaluation") -> Path:
    """Write `report.md` (+ PNG plots) under `out_dir`; returns the report path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", "",
             f"- catalogue: `{result.catalog}`, split: `{result.split or 'all'}`, samples: {result.n_samples}",
             f"- model: `{result.model}`",
             f"- written: {dt.datetime.now().isoformat(timespec='seconds')}", "",
             "## Retrieval", "", _md_table(result), ""]
    if result.variants:
        names = [r.name for r in result.directions]
        parts += ["## Embedding variants (R@1 / R@10 / mAP)", "",
                  "| variant | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for vname, v in result.variants.items():
            m = v.metrics()
            cells = [f"{m[n]['R@1']:.3f} / {m[n]['R@10']:.3f} / {m[n]['mAP']:.3f}" if n in m else "-" for n in names]
            parts.append(f"| {vname} | " + " | ".join(cells) + " |")
        parts.append("")
    if result.directions:
        plot_recall_curves(result, out_dir / "recall_at_k.png")
        parts += ["![Recall@K](recall_at_k.png)", ""]
    if thumbnail is not None and embeddings is not None:
        parts += ["## Examples", ""]
        for i, r in enumerate(result.directions):
            q = embeddings.domain(r.query_domain)
            g = embeddings.domain(r.gallery_domain)
            png = plot_examples(result, i, q.sample_ids, q.product_ids, g.sample_ids, g.product_ids, thumbnail,
                                out_dir / f"examples_{r.name}.png")
            if png:
                parts += [f"![{r.name} examples]({png.name})", ""]
    parts += ["## Notes", ""] + [f"- {n}" for n in result.notes] + [""]
    if len(result.bad):
        parts += [f"## Skipped records ({len(result.bad)})", ""]
        parts += [f"- `{b.record}`: {b.problem}" + (f" ({b.stage})" if b.stage else "") for b in result.bad]
        parts.append("")
    report = out_dir / "report.md"
    atomic.write_text(report, "\n".join(parts))
    return report
