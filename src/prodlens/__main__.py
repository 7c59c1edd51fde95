"""`python -m prodlens ...` (what torchrun runs: `torchrun --nproc_per_node 2 -m prodlens train ...`)."""
from .cli import main

main()
