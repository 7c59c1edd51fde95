"""The training report: loss and validation recall curves, and trained vs zero-shot metrics."""
from __future__ import annotations

from pathlib import Path

# the object API renders without pyplot: no global backend switch for the user's own plots
from matplotlib.figure import Figure
from rich.table import Table

from .. import atomic


def comparison_rows(result) -> list[tuple[str, dict, dict | None]]:
    """(direction, best trained metrics, zero-shot metrics) of a TrainResult."""
    trained = result.best.get("metrics") or {}
    zero = result.zero_shot or {}
    return [(name, trained[name], zero.get(name)) for name in trained]


def comparison_table(result) -> Table:
    table = Table(title=f"validation: trained (best, step {result.best.get('step')}) vs zero-shot",
                  title_justify="left")
    for col in ("direction", "R@1", "R@5", "R@10", "mAP", "zero-shot R@1", "gain R@1"):
        table.add_column(col, justify="left" if col == "direction" else "right")
    for name, m, z in comparison_rows(result):
        z1 = z["R@1"] if z else float("nan")
        table.add_row(name, *(f"{m[k]:.3f}" for k in ("R@1", "R@5", "R@10", "mAP")), f"{z1:.3f}",
                      f"{m['R@1'] - z1:+.3f}")
    return table


def write_training_report(result, out_dir: str | Path, title: str = "prodlens training") -> Path:
    out_dir = Path(out_dir)
    history = result.history
    train_rows = [h for h in history if "total" in h]
    eval_rows = [h for h in history if "eval" in h]
    parts = [f"# {title}", "", f"- steps: {result.step} of {result.total_steps} "
             f"({result.steps_per_epoch} per epoch), {result.minutes:.1f} min"
             + (" — stopped early" if result.stopped_early else ""), ""]
    rows = comparison_rows(result)
    if rows:
        parts += [f"## Validation: best checkpoint (step {result.best['step']}) vs zero-shot", "",
                  "| direction | R@1 | R@5 | R@10 | mAP | zero-shot R@1 | zero-shot mAP |", "|---|---|---|---|---|---|---|"]
        for name, m, z in rows:
            zs = f"{z['R@1']:.3f} | {z['mAP']:.3f}" if z else "- | -"
            parts.append(f"| {name} | {m['R@1']:.3f} | {m['R@5']:.3f} | {m['R@10']:.3f} | {m['mAP']:.3f} | {zs} |")
        parts.append("")
        last = result.last_metrics or {}
        if last:
            parts += ["Last checkpoint on the same split (the best one was *selected* on it, so its score is "
                      "optimistic): " + ", ".join(f"{n} R@1 {m['R@1']:.3f}" for n, m in last.items()), ""]
    fig = Figure(figsize=(10, 3.6), dpi=100)
    axes = fig.subplots(1, 2)
    if train_rows:
        steps = [h["step"] for h in train_rows]
        axes[0].plot(steps, [h["total"] for h in train_rows], label="total")
        for key in sorted({k for h in train_rows for k in h if k.startswith(("nce/", "cls"))}):
            axes[0].plot(steps, [h.get(key, float("nan")) for h in train_rows], label=key, alpha=0.7)
        axes[0].set_xlabel("step")
        axes[0].set_title("training loss")
        axes[0].legend(fontsize=7)
    if eval_rows:
        steps = [h["step"] for h in eval_rows]
        for name in eval_rows[-1]["eval"]:
            axes[1].plot(steps, [h["eval"].get(name, {}).get("R@1", float("nan")) for h in eval_rows], marker="o",
                         markersize=3, label=f"{name} R@1")
        zero = result.zero_shot or {}
        for name, m in zero.items():
            axes[1].axhline(m["R@1"], linestyle="--", linewidth=1, color="grey")
        axes[1].set_ylim(0, 1)
        axes[1].set_xlabel("step")
        axes[1].set_title("validation R@1 (dashed: zero-shot)")
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    with atomic.atomic_path(out_dir / "training.png") as tmp:
        fig.savefig(tmp, format="png")
    parts += ["![training curves](training.png)", "", "Metrics log: `metrics.jsonl`; checkpoints: `best.safetensors`, `last.safetensors`.", ""]
    report = out_dir / "report.md"
    atomic.write_text(report, "\n".join(parts))
    return report
