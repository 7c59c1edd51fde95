"""The built-in demo: a generated tri-domain catalogue, embedded and evaluated end to end."""
from .synth import generate_demo_catalog, make_products

__all__ = ["generate_demo_catalog", "make_products"]
