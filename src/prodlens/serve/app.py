"""HTTP API (FastAPI) over a SearchService, and the search web page.

    POST /search   multipart: file (image or clip) | text | sample_id, k, domain (repeatable), category, ...
    GET  /health   200 once the index and model are loaded (503 while loading or if loading failed)
    GET  /stats    index size, model, query count and latency
    GET  /categories  the index's categories with their product counts (for the page's category filter)
    GET  /recommend?user=ID&k=10, POST /recommend {"history": [...], "k": 10}   (with a recommender run)
    POST /recommend/items {"items": [{"item_id", "text"}]}, DELETE /recommend/items/{id}   (X-API-Key)
    GET  /thumbnails/<name>.jpg, GET /  (the web page), GET /docs and /openapi.json (schema)
"""
from __future__ import annotations

import contextlib
import re
import threading
from importlib import resources
from pathlib import Path
from typing import Annotated, Callable, Optional

from fastapi import FastAPI, File, Form, Header, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel

from ..errors import ProdlensError
from ..index import ModelMismatch
from .service import BadQuery, SearchService, ServeConfig

THUMBNAIL_NAME = re.compile(r"^[0-9a-f]{20}\.jpg$")
READ_CHUNK = 1 << 20


class SearchHit(BaseModel):
    product_id: str
    score: float
    domain: str
    sample_id: str
    title: str = ""
    category: str = ""
    thumbnail: Optional[str] = None  # URL of the sample's thumbnail


class SearchResponse(BaseModel):
    results: list[SearchHit]
    query: dict
    took_ms: float


class RecommendRequest(BaseModel):
    history: list[str]  # item ids, oldest first
    k: int = 10


class NewItem(BaseModel):
    item_id: str
    text: str  # title, brand, category... as in the training items file


class AddItemsRequest(BaseModel):
    items: list[NewItem]


class ServiceState:
    """Loads the service in the background so the server answers /health (503) while models load."""

    def __init__(self, config: ServeConfig, service: SearchService | None = None,
                 loader: Callable[[ServeConfig], SearchService] = SearchService):
        self.config = config
        self.service = service
        self.loader = loader
        self.error: str | None = None
        self.ready = threading.Event()
        if service is not None:
            self.ready.set()

    def load(self) -> None:
        try:
            self.service = self.loader(self.config)
        except Exception as e:  # reported by /health; the process stays up so operators can see why
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.ready.set()

    def get(self) -> SearchService:
        if self.service is None:
            raise HTTPException(503, self.error or "the index and model are still loading")
        return self.service


def create_app(config: ServeConfig, service: SearchService | None = None, extra_routes=None,
               loader: Callable[[ServeConfig], SearchService] = SearchService) -> FastAPI:
    """`service`: one already loaded; otherwise `loader(config)` builds it in the background after start-up."""
    state = ServiceState(config, service, loader)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if state.service is None:
            threading.Thread(target=state.load, daemon=True, name="prodlens-load").start()
        yield

    app = FastAPI(title="prodlens search", version="1", lifespan=lifespan,
                  description="Cross-domain product search: a photo, a clip or text finds the product.")
    app.state.prodlens = state
    limit = int(config.max_upload_mb * 1024 * 1024)

    @app.middleware("http")
    async def refuse_oversized(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit + READ_CHUNK:  # form overhead on top of the file
            return JSONResponse({"detail": f"request body of {int(length)} bytes is over the "
                                           f"{config.max_upload_mb:g} MB upload limit"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(BadQuery)
    async def bad_query(request: Request, exc: BadQuery):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(ModelMismatch)
    async def mismatch(request: Request, exc: ModelMismatch):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(ProdlensError)
    async def prodlens_error(request: Request, exc: ProdlensError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/health")
    def health():
        if state.service is not None:
            return {"status": "ok", "items": len(state.service.index)}
        body = {"status": "error", "error": state.error} if state.error else {"status": "loading"}
        return JSONResponse(body, status_code=503)

    @app.get("/stats")
    def stats():
        return state.get().stats()

    @app.get("/categories")
    def categories():
        return {"categories": state.get().index.category_products()}

    @app.post("/search", response_model=SearchResponse)
    def search(file: Annotated[Optional[UploadFile], File(description="an image or a video clip")] = None,
               text: Annotated[Optional[str], Form(description="query text (or extra text with a file)")] = None,
               sample_id: Annotated[Optional[str], Form(description="search with an indexed sample")] = None,
               k: Annotated[int, Form()] = 10,
               domain: Annotated[Optional[list[str]], Form(description="only these domains (page, video, live)")] = None,
               category: Annotated[Optional[list[str]], Form(description="only these categories (repeat the "
                                                                         "field; names may contain commas)")] = None,
               per_product: Annotated[bool, Form(description="one hit per product")] = True,
               query_domain: Annotated[Optional[str], Form(description="embed the query as this domain")] = None):
        service = state.get()
        data, filename = None, "upload"
        if file is not None and (file.filename or file.size):
            filename = Path(file.filename or "upload").name[:200]  # a name for messages, never a path
            data = _read_limited(file, limit, filename)
        domains = _split_values(domain)
        result = service.search(data=data, filename=filename, text=text or "", sample_id=sample_id, k=k,
                                domains=domains, categories=[c for c in category or () if c.strip()] or None,
                                per_product=per_product, query_domain=query_domain or None)
        body = result.to_json()
        for hit in body["results"]:
            hit["thumbnail"] = f"/thumbnails/{hit['thumbnail']}" if hit["thumbnail"] else None
        return body

    @app.get("/recommend")
    def recommend_user(user: str, k: int = 10):
        """Next items for a user the recommender was trained with."""
        return {"user": user, "results": _with_urls(state.get().recommend(user=user, k=k))}

    @app.post("/recommend")
    def recommend_history(request: RecommendRequest):
        """Next items after an explicit history (a new or anonymous session)."""
        return {"results": _with_urls(state.get().recommend(history=request.history, k=request.k))}

    @app.post("/recommend/items")
    def add_items(request: AddItemsRequest, x_api_key: Annotated[Optional[str], Header()] = None):
        """New products into the recommender's catalogue without retraining: recommendable when this returns."""
        service = state.get()
        service.check_writer(x_api_key)
        return service.add_rec_items([(i.item_id, i.text) for i in request.items])

    @app.delete("/recommend/items/{item_id}")
    def remove_item(item_id: str, x_api_key: Annotated[Optional[str], Header()] = None):
        """Retire a product: never recommended again."""
        service = state.get()
        service.check_writer(x_api_key)
        return service.remove_rec_items([item_id])

    @app.get("/thumbnails/{name}")
    def thumbnail(name: str):
        if not THUMBNAIL_NAME.match(name):
            raise HTTPException(404, "no such thumbnail")
        path = state.get().index.path / "thumbs" / name
        if not path.is_file():
            raise HTTPException(404, "no such thumbnail")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return resources.files("prodlens.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    for register in extra_routes or ():
        register(app, state)
    return app


def _with_urls(hits: list[dict]) -> list[dict]:
    for h in hits:
        h["thumbnail"] = f"/thumbnails/{h['thumbnail']}" if h.get("thumbnail") else None
    return hits


def _read_limited(file: UploadFile, limit: int, filename: str) -> bytes:
    chunks, size = [], 0
    while True:
        chunk = file.file.read(READ_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise BadQuery(f"{filename}: upload is over the {limit / 1024 / 1024:g} MB limit", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _split_values(values: list[str] | None) -> list[str] | None:
    """Repeated form fields and comma-separated lists both work: domain=page&domain=live or domain=page,live."""
    out = [v.strip() for value in values or () for v in value.split(",") if v.strip()]
    return out or None


def run(config: ServeConfig, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    import uvicorn

    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level)
