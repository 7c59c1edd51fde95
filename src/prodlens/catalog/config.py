"""Catalogue names the command line reads at start (no loader imported here)."""

SOURCES = ("grocery", "rope", "folder", "manifest")
# ROPE's image host (the COPE README's example)
DEFAULT_URL_PREFIX = "https://js-ad.a.yximgs.com/bs2/ad-material-video/"
