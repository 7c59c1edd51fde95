"""HTTP API (FastAPI) over a SearchService, and the search web page.

    POST /search   multipart: file (image or clip) | text | sample_id, k, offset, domain (repeatable), category, ...
    POST /search/batch  JSON {"queries": [{"text" | "sample_id" | "image_base64", "k", "offset", ...}, ...]}
    POST /embed    multipart: file | text, domain → the query's vector
    GET  /health   200 once the index and model are loaded (503 while loading or if loading failed)
    GET  /stats    index size, model, query count and latency
    GET  /metrics  Prometheus metrics: requests, latencies, batch sizes, index and recommender size
    GET  /categories  the index's categories with their product counts (for the page's category filter)
    GET  /recommend?user=ID&k=10, POST /recommend {"history": [...], "k": 10}   (with a recommender run)
    POST /recommend/items {"items": [{"item_id", "text"}]}, DELETE /recommend/items/{id}   (X-API-Key)
    GET  /thumbnails/<name>.jpg, GET /  (the web page), GET /docs and /openapi.json (schema)
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import contextvars
import json
import logging
import os
import re
import threading
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Annotated, Callable, Optional

from fastapi import FastAPI, File, Form, Header, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from ..errors import ProdlensError
from ..index import ModelMismatch
from .metrics import Metrics
from .config import ServeConfig
from .service import BadQuery, SearchQuery, SearchService

THUMBNAIL_NAME = re.compile(r"^[0-9a-f]{20}\.jpg$")
READ_CHUNK = 1 << 20
CONFIG_ENV = "PRODLENS_SERVE_CONFIG"  # the ServeConfig (JSON) of `prodlens serve --workers N` worker processes
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
log = logging.getLogger("prodlens.serve")


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every log record (`%(request_id)s`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


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
    offset: int = 0
    next_offset: Optional[int] = None  # pass as `offset` for the next page; null: no more results


class BatchQuery(BaseModel):
    text: Optional[str] = None
    sample_id: Optional[str] = None
    image_base64: Optional[str] = Field(None, description="an image or a clip, base64-encoded")
    k: int = 10
    offset: int = 0
    domains: Optional[list[str]] = None
    categories: Optional[list[str]] = None
    per_product: bool = True
    query_domain: Optional[str] = None


class BatchRequest(BaseModel):
    queries: list[BatchQuery]


class BatchAnswer(BaseModel):
    """A query's results, or its error (`status`, `detail`); one bad query does not fail the others."""
    results: Optional[list[SearchHit]] = None
    query: Optional[dict] = None
    took_ms: Optional[float] = None
    offset: Optional[int] = None
    next_offset: Optional[int] = None
    status: int = 200
    detail: Optional[str] = None


class BatchResponse(BaseModel):
    responses: list[BatchAnswer]


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
                 loader: Callable[..., SearchService] = SearchService):
        self.config = config
        self.service = service
        self.loader = loader
        self.metrics = service.metrics if service is not None else Metrics()
        self.error: str | None = None
        self.ready = threading.Event()
        if service is not None:
            self.ready.set()

    def load(self) -> None:
        try:
            self.service = self.loader(self.config, metrics=self.metrics)
        except Exception as e:  # reported by /health; the process stays up so operators can see why
            self.error = f"{type(e).__name__}: {e}"
            log.error("the service failed to load: %s", self.error)
        finally:
            self.ready.set()

    def get(self) -> SearchService:
        if self.service is None:
            raise HTTPException(503, self.error or "the index and model are still loading")
        return self.service


def create_app(config: ServeConfig, service: SearchService | None = None, extra_routes=None,
               loader: Callable[..., SearchService] = SearchService) -> FastAPI:
    """`service`: one already loaded; otherwise `loader(config, metrics=...)` builds it in the background after
    start-up."""
    state = ServiceState(config, service, loader)
    metrics = state.metrics

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

    @app.middleware("http")
    async def identify_and_measure(request: Request, call_next):
        """Every request gets an id (the client's X-Request-ID when it sends a sane one), echoed in the response and
        on every log line of the request; its route, status and latency go to the metrics."""
        given = request.headers.get("x-request-id", "")
        rid = given if REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
        token = request_id.set(rid)
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = rid
            return response
        finally:
            seconds = time.perf_counter() - start
            route = getattr(request.scope.get("route"), "path", "unmatched")  # templates, not raw paths: bounded
            metrics.requests.labels(request.method, route, str(status)).inc()
            metrics.latency.labels(route).observe(seconds)
            log.info("%s %s %d %.1f ms", request.method, request.url.path, status, seconds * 1000)
            request_id.reset(token)

    @app.exception_handler(BadQuery)
    async def bad_query(request: Request, exc: BadQuery):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(ModelMismatch)
    async def mismatch(request: Request, exc: ModelMismatch):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(TimeoutError)
    async def overloaded(request: Request, exc: TimeoutError):
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

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

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics():
        if state.service is not None:
            state.service.refresh()  # index and recommender gauges as served now
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.post("/search", response_model=SearchResponse)
    def search(file: Annotated[Optional[UploadFile], File(description="an image or a video clip")] = None,
               text: Annotated[Optional[str], Form(description="query text (or extra text with a file)")] = None,
               sample_id: Annotated[Optional[str], Form(description="search with an indexed sample")] = None,
               k: Annotated[int, Form(description="results per page")] = 10,
               offset: Annotated[int, Form(description="results to skip (the previous page's next_offset)")] = 0,
               domain: Annotated[Optional[list[str]], Form(description="only these domains (page, video, live); "
                                                                       "given but empty: none chosen")] = None,
               category: Annotated[Optional[list[str]], Form(description="only these categories (repeat the "
                                                                         "field; names may contain commas)")] = None,
               per_product: Annotated[bool, Form(description="one hit per product")] = True,
               query_domain: Annotated[Optional[str], Form(description="embed the query as this domain")] = None):
        service = state.get()
        data, filename = _upload(file, limit)
        result = service.search(data=data, filename=filename, text=text or "", sample_id=sample_id, k=k,
                                offset=offset, domains=_split_values(domain),
                                categories=[c for c in category or () if c.strip()] or None,
                                per_product=per_product, query_domain=query_domain or None)
        return _with_urls_body(result.to_json())

    @app.post("/search/batch", response_model=BatchResponse)
    def search_batch(request: BatchRequest):
        """Many queries in one request, embedded together; each answer in its query's place."""
        service = state.get()
        if not 1 <= len(request.queries) <= config.max_batch_queries:
            raise BadQuery(f"a batch holds 1 to {config.max_batch_queries} queries, got {len(request.queries)}", 422)
        queries, answers = [], {}
        for n, q in enumerate(request.queries):
            try:
                data = _base64(q.image_base64, n) if q.image_base64 else None
                queries.append((n, SearchQuery(data=data, filename=f"query {n}", text=q.text or "",
                                               sample_id=q.sample_id, k=q.k, offset=q.offset, domains=q.domains,
                                               categories=q.categories or None, per_product=q.per_product,
                                               query_domain=q.query_domain)))
            except BadQuery as e:
                answers[n] = {"status": e.status, "detail": str(e)}
        results = service.search_many([q for _, q in queries])
        for (n, _), result in zip(queries, results):
            answers[n] = ({"status": result.status, "detail": str(result)} if isinstance(result, BadQuery)
                          else _with_urls_body(result.to_json()))
        return {"responses": [answers[n] for n in range(len(request.queries))]}

    @app.post("/embed")
    def embed(file: Annotated[Optional[UploadFile], File(description="an image or a video clip")] = None,
              text: Annotated[Optional[str], Form()] = None,
              domain: Annotated[Optional[str], Form(description="embed as this domain (default: live for "
                                                                "uploads, page for text)")] = None):
        """The vector the index's model gives an upload and/or text, as a query of `domain`."""
        service = state.get()
        data, filename = _upload(file, limit)
        return service.embed(data=data, filename=filename, text=text or "", domain=domain or None)

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


def _with_urls_body(body: dict) -> dict:
    _with_urls(body["results"])
    return body


def _base64(value: str, n: int) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadQuery(f"query {n}: image_base64 is not valid base64", 422) from None


def _upload(file: UploadFile | None, limit: int) -> tuple[bytes | None, str]:
    """(the uploaded bytes or None, a name for messages — never a path)."""
    if file is None or not (file.filename or file.size):
        return None, "upload"
    filename = Path(file.filename or "upload").name[:200]
    return _read_limited(file, limit, filename), filename


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
    """Repeated form fields and comma-separated lists both work: domain=page&domain=live or domain=page,live.
    The field absent: None (no filter); given with nothing in it: [] (nothing chosen)."""
    if values is None:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def app_from_env() -> FastAPI:
    """The app of one `prodlens serve --workers N` worker process (uvicorn's factory): its config and log level come
    from the parent through $PRODLENS_SERVE_CONFIG."""
    settings = json.loads(os.environ[CONFIG_ENV])
    _log_with_request_ids(settings.pop("log_level"))
    _share_cores(settings.pop("workers"))
    return create_app(ServeConfig(**settings))


def _share_cores(workers: int) -> None:
    """Each of `workers` processes computes on its share of the cores: torch's threads, and with them the ONNX
    Runtime sessions (image encoder) and OCR engines, which size themselves from torch's count — so N workers never
    run N times the cores' threads."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, workers)))


def _log_with_request_ids(level: str) -> None:
    """prodlens's log lines to stderr, each with the id of the request it belongs to."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    logging.getLogger("prodlens").addHandler(handler)
    logging.getLogger("prodlens").setLevel(level.upper())


def run(config: ServeConfig, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info",
        workers: int = 1) -> None:
    """Serve on host:port. With `workers` > 1, that many processes share the port and open the index read-only, each
    with its own models (memory × workers); /metrics sums them all."""
    import tempfile

    import uvicorn

    if workers <= 1:
        _log_with_request_ids(log_level)
        uvicorn.run(create_app(config), host=host, port=port, log_level=log_level)
        return
    import socket

    from uvicorn.supervisors import Multiprocess

    with tempfile.TemporaryDirectory(prefix="prodlens-metrics-") as metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        os.environ[CONFIG_ENV] = json.dumps({**dataclasses.asdict(config), "log_level": log_level,
                                             "workers": workers})
        server_config = uvicorn.Config("prodlens.serve.app:app_from_env", factory=True, host=host, port=port,
                                       log_level=log_level, workers=workers)
        # the shared listening socket made here with proto=TCP: uvicorn's own has proto 0, so asyncio never sets
        # TCP_NODELAY on its connections and every response waits ~40 ms on a delayed ACK (measured: /health 44 ms
        # with 2 workers, 1.5 ms with 1)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.set_inheritable(True)
        Multiprocess(server_config, sockets=[sock]).run()
