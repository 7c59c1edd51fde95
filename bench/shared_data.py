"""Where the benchmarks find the shared reference data (../shared/data beside the clone)."""
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REC_DATASETS = {"beauty": ("amazon-beauty/interactions.tsv", "amazon-beauty/items.tsv"),
                "scientific": ("amazon-scientific/Scientific.full_sequences.tsv", "amazon-scientific/Scientific.text")}


def rec_files(name: str) -> tuple[Path, Path]:
    inter, items = (SHARED / p for p in REC_DATASETS[name])
    if not inter.exists():
        raise SystemExit(f"{inter} not found: clone prodlens beside ../shared")
    return inter, items


def grocery_root(root: Path | None = None) -> Path:
    """The Grocery Store directory: `root` when given, else ../shared's; a clear exit when it is not there."""
    root = root or SHARED / "grocery-store"
    if not root.exists():
        raise SystemExit(f"{root} not found: clone prodlens beside ../shared or pass --root")
    return root
