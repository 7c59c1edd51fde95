"""`prodlens` command line. Each module registers its commands on the one Typer app."""
from __future__ import annotations

import os
import sys

from . import core, model, rec, search  # noqa: F401  (register commands)
from .common import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
