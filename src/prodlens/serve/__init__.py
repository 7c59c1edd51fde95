"""Search service: an index + the model that built it, behind an HTTP API (FastAPI) with a web page."""
from ..lazy import exports

_WHERE = {
    "config": ["ServeConfig"],
    "service": ["BadQuery", "QueryResult", "SearchQuery", "SearchService"],
}
__getattr__, __dir__ = exports(__name__, _WHERE)
__all__ = ["BadQuery", "QueryResult", "SearchQuery", "SearchService", "ServeConfig", "create_app"]


def create_app(*args, **kwargs):
    from .app import create_app as _create_app  # FastAPI only when serving

    return _create_app(*args, **kwargs)
