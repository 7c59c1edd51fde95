"""Search service: an index + the model that built it, behind an HTTP API (FastAPI) with a web page."""
from .service import BadQuery, QueryResult, SearchQuery, SearchService, ServeConfig

__all__ = ["BadQuery", "QueryResult", "SearchQuery", "SearchService", "ServeConfig", "create_app"]


def create_app(*args, **kwargs):
    from .app import create_app as _create_app  # FastAPI only when serving

    return _create_app(*args, **kwargs)
