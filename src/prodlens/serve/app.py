"""HTTP API (FastAPI) over a SearchService, and the search web page.

    POST /search   JSON {"text" | "sample_id" | "image_base64", "k", "offset", "domains", "categories", "filters",
                   "min_score", "retrieval", ...}; or multipart (the page's form): file | text | sample_id, k, offset,
                   domain (repeatable), category (repeatable), filters (JSON), min_score, retrieval, ...
    POST /search/batch  JSON {"queries": [<a /search JSON body>, ...]}
    POST /items, GET|PATCH|DELETE /items/{product_id}   product pages over HTTP (X-API-Key: the write key)
    /indexes/{name}/search, /search/batch, /items, /categories, /stats   the same on each served index; GET /indexes
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
import contextvars
import dataclasses
import functools
import inspect
import json
import logging
import os
import re
import threading
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Annotated, Callable, Literal, Optional

from fastapi import FastAPI, File, Form, Header, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ProdlensError
from ..index import ModelMismatch
from .metrics import Metrics
from .config import ServeConfig
from .service import BadQuery, ItemDocument, SearchQuery, SearchService

THUMBNAIL_NAME = re.compile(r"^[0-9a-f]{20}\.jpg$")
READ_CHUNK = 1 << 20
CONFIG_ENV = "PRODLENS_SERVE_CONFIG"  # the ServeConfig (JSON) of `prodlens serve --workers N` worker processes
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# names users of other search APIs send, and the one this API takes
FIELD_HINTS = {"category": "categories", "domain": "domains", "filter": "filters", "query": "text", "q": "text",
               "size": "k", "limit": "k", "top_k": "k", "from": "offset", "image": "image_base64",
               "threshold": "min_score", "mode": "retrieval", "search_method": "retrieval"}
FORM_FIELDS = {"file", "text", "sample_id", "k", "offset", "domain", "category", "filters", "per_product",
               "query_domain", "min_score", "retrieval"}

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
log = logging.getLogger("prodlens.serve")


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every log record (`%(request_id)s`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class SearchHit(BaseModel):
    product_id: str
    score: float = Field(description="relevance in [0, 1]: the probability that this is the product searched for "
                                     "(the same scale for text, photos and clips)")
    cosine: float = Field(0.0, description="cosine of the query's vector with this sample's")
    domain: str
    sample_id: str
    title: str = ""
    category: str = ""
    thumbnail: Optional[str] = None  # URL of the sample's thumbnail
    attributes: dict = Field(default_factory=dict, description="the product's attributes (brand, price, ...)")


class SearchResponse(BaseModel):
    results: list[SearchHit]
    query: dict
    took_ms: float
    offset: int = 0
    next_offset: Optional[int] = None  # pass as `offset` for the next page; null: no more results
    total: int = Field(0, description="hits in all (every product the filters let through, or those scoring at "
                                      "least min_score)")
    total_relation: Literal["eq", "gte"] = "eq"
    reason: Optional[str] = Field(None, description="why there are no results, when there are none")


class SearchRequest(BaseModel):
    """A search as JSON: one of `text`, `sample_id`, `image_base64` (text may come with an image); unknown fields
    are refused (422), never ignored."""
    model_config = ConfigDict(extra="forbid")
    text: Optional[str] = None
    sample_id: Optional[str] = None
    image_base64: Optional[str] = Field(None, description="an image or a clip, base64-encoded")
    k: int = Field(10, description="results per page")
    offset: int = Field(0, description="results to skip (the previous page's next_offset)")
    domains: Optional[list[str]] = Field(None, description="only these domains (page, video, live)")
    categories: Optional[list[str]] = Field(None, description="only these categories (case-insensitive)")
    filters: Optional[dict] = Field(None, description='product attributes: {"brand": "Arla"}, {"brand": ["a", "b"]}, '
                                                      '{"price": {"gte": 10, "lt": 20}}')
    per_product: bool = Field(True, description="one hit per product")
    query_domain: Optional[str] = Field(None, description="embed the query as this domain")
    min_score: Optional[float] = Field(None, description="leave out hits less relevant than this (0 to 1)")
    retrieval: Optional[Literal["vector", "lexical", "hybrid"]] = Field(None, description="default: the server's")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queries: list[SearchRequest]


class ItemRequest(BaseModel):
    """A product page: its picture, texts and attributes (any name: brand, price, ...; filterable)."""
    model_config = ConfigDict(extra="forbid")
    product_id: str
    title: str = ""
    category: str = ""
    description: str = ""
    attributes: dict = Field(default_factory=dict)
    image_base64: str = Field(description="the product's picture, base64-encoded")


class ItemPatch(BaseModel):
    """Fields to change; an attribute set to null is removed. A new title or description comes with a picture."""
    model_config = ConfigDict(extra="forbid")
    title: Optional[str] = None
    category: Optional[str] = None
    description: Optional[str] = None
    attributes: Optional[dict] = None
    image_base64: Optional[str] = None


class BatchAnswer(BaseModel):
    """A query's results, or its error (`status`, `detail`); one bad query does not fail the others."""
    results: Optional[list[SearchHit]] = None
    query: Optional[dict] = None
    took_ms: Optional[float] = None
    offset: Optional[int] = None
    next_offset: Optional[int] = None
    total: Optional[int] = None
    total_relation: Optional[str] = None
    reason: Optional[str] = None
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
    start-up. `config.indexes` are served beside it, each loaded in the background too."""
    state = ServiceState(config, service, loader)
    states = {config.index_name: state}
    for name, directory in config.indexes.items():
        states[name] = ServiceState(dataclasses.replace(config, index_dir=directory, index_name=name, indexes={},
                                                        rec_run=None), None, loader)
    metrics = state.metrics

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        for s in states.values():
            if s.service is None:
                threading.Thread(target=s.load, daemon=True, name="prodlens-load").start()
        yield

    app = FastAPI(title="prodlens search", version="2", lifespan=lifespan,
                  description="Cross-domain product search: a photo, a clip or text finds the product. Several "
                              "indexes: the same routes under /indexes/{name}/.")
    app.state.prodlens = state
    limit = int(config.max_upload_mb * 1024 * 1024)

    def served(name: str | None) -> ServiceState:
        if name is None:
            return state
        if name not in states:
            raise HTTPException(404, f"no index {name!r}; this server has: {', '.join(states)}")
        return states[name]

    def reader(name: str | None, key: str | None) -> SearchService:
        service = served(name).get()
        service.check_reader(key)
        return service

    def writer(name: str | None, key: str | None) -> SearchService:
        service = served(name).get()
        service.check_writer(key)
        return service

    @app.middleware("http")
    async def refuse_oversized(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit * 4 // 3 + READ_CHUNK:  # base64 or form overhead
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

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        return JSONResponse(_validation_body(exc.errors()), status_code=422)

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

    @app.get("/indexes")
    def list_indexes(x_api_key: Annotated[Optional[str], Header()] = None):
        """The served indexes: name, size, domains, and whether each is loaded."""
        state.get().check_reader(x_api_key)
        out = []
        for name, s in states.items():
            entry = {"name": name, "default": s is state, "status": "ok" if s.service else
                     ("error" if s.error else "loading")}
            if s.service is not None:
                stats = s.service.index.stats()
                entry.update(items=stats["items"], products=stats["products"], domains=stats["domains"],
                             model=stats["model"])
            out.append(entry)
        return {"indexes": out}

    def stats(name: str | None = None, x_api_key: Annotated[Optional[str], Header()] = None):
        return reader(name, x_api_key).stats()

    def categories(name: str | None = None, x_api_key: Annotated[Optional[str], Header()] = None):
        service = reader(name, x_api_key)
        return {"categories": service.index.category_products(), "domains": service.index.stats()["domains"],
                "attributes": sorted(service.index.attribute_names())}

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics():
        if state.service is not None:
            state.service.refresh()  # index and recommender gauges as served now
        return Response(metrics.render(), media_type=metrics.content_type)

    async def search(request: Request, name: str | None = None, x_api_key: Annotated[Optional[str], Header()] = None):
        """One search. JSON (application/json) with the fields of SearchRequest; or multipart/form-data (the web
        page) with `file`, `text`, `sample_id`, `k`, `offset`, `domain` and `category` (each repeatable),
        `filters` (JSON), `per_product`, `query_domain`, `min_score`, `retrieval`."""
        service = reader(name, x_api_key)
        if _is_json(request):
            query = _search_query(_parsed(SearchRequest, await request.body()), "image_base64", "image_base64")
        else:
            query = await _form_query(await request.form(), limit)
        result = await run_in_threadpool(service.search_many, [query])
        if isinstance(result[0], BadQuery):
            raise result[0]
        return _with_urls_body(result[0].to_json(), _prefix(name))

    def search_batch(request: BatchRequest, name: str | None = None,
                     x_api_key: Annotated[Optional[str], Header()] = None):
        """Many queries in one request, embedded together; each answer in its query's place."""
        service = reader(name, x_api_key)
        if not 1 <= len(request.queries) <= config.max_batch_queries:
            raise BadQuery(f"a batch holds 1 to {config.max_batch_queries} queries, got {len(request.queries)}", 422)
        queries, answers = [], {}
        for n, q in enumerate(request.queries):
            try:
                queries.append((n, _search_query(q, f"query {n}", f"query {n}: image_base64")))
            except BadQuery as e:
                answers[n] = {"status": e.status, "detail": str(e)}
        results = service.search_many([q for _, q in queries])
        for (n, _), result in zip(queries, results):
            answers[n] = ({"status": result.status, "detail": str(result)} if isinstance(result, BadQuery)
                          else _with_urls_body(result.to_json(), _prefix(name)))
        return {"responses": [answers[n] for n in range(len(request.queries))]}

    async def add_item(request: Request, name: str | None = None,
                       x_api_key: Annotated[Optional[str], Header()] = None):
        """Create or replace a product page: JSON (ItemRequest) or multipart (`file` and the same fields, with
        `attributes` as JSON). Searchable when this returns."""
        service = writer(name, x_api_key)
        if _is_json(request):
            body = _parsed(ItemRequest, await request.body())
            doc = ItemDocument(body.product_id, body.title, body.category, body.description, body.attributes,
                               _base64(body.image_base64, "image_base64"))
        else:
            doc = await _form_item(await request.form(), limit)
        return await run_in_threadpool(service.put_item, doc)

    def get_item(product_id: str, name: str | None = None, x_api_key: Annotated[Optional[str], Header()] = None):
        """A product's title, category, attributes and indexed samples."""
        found = reader(name, x_api_key).get_item(product_id)
        for s in found["samples"]:
            s["thumbnail"] = f"{_prefix(name)}/thumbnails/{s['thumbnail']}" if s["thumbnail"] else None
        return found

    def patch_item(product_id: str, patch: ItemPatch, name: str | None = None,
                   x_api_key: Annotated[Optional[str], Header()] = None):
        """Change a product's category or attributes; a new title or description comes with its picture."""
        service = writer(name, x_api_key)
        image = _base64(patch.image_base64, "image_base64") if patch.image_base64 else None
        return service.patch_item(product_id, patch.model_dump(exclude={"image_base64"}, exclude_none=True), image)

    def delete_item(product_id: str, name: str | None = None, x_api_key: Annotated[Optional[str], Header()] = None):
        """Remove a product and every sample of it."""
        return writer(name, x_api_key).delete_item(product_id)

    def thumbnail(file: str, name: str | None = None):
        if not THUMBNAIL_NAME.match(file):
            raise HTTPException(404, "no such thumbnail")
        path = served(name).get().index.path / "thumbs" / file
        if not path.is_file():
            raise HTTPException(404, "no such thumbnail")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    search_body = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": SearchRequest.model_json_schema()},
        "multipart/form-data": {"schema": _form_schema()}}}}
    item_body = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": ItemRequest.model_json_schema()},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}, "product_id": {"type": "string"},
            "title": {"type": "string"}, "category": {"type": "string"}, "description": {"type": "string"},
            "attributes": {"type": "string", "description": "JSON object"}}, "required": ["product_id", "file"]}}}}}
    for prefix, tag, named in (("", "default index", False), ("/indexes/{name}", "named indexes", True)):
        def add(path, func, **kw):
            app.add_api_route(path, func if named else _without_name(func), **kw)

        add(f"{prefix}/search", search, methods=["POST"], response_model=SearchResponse, tags=[tag],
            openapi_extra=search_body)
        add(f"{prefix}/search/batch", search_batch, methods=["POST"], response_model=BatchResponse, tags=[tag])
        add(f"{prefix}/items", add_item, methods=["POST"], tags=[tag], openapi_extra=item_body)
        add(f"{prefix}/items/{{product_id}}", get_item, methods=["GET"], tags=[tag])
        add(f"{prefix}/items/{{product_id}}", patch_item, methods=["PATCH"], tags=[tag])
        add(f"{prefix}/items/{{product_id}}", delete_item, methods=["DELETE"], tags=[tag])
        add(f"{prefix}/categories", categories, methods=["GET"], tags=[tag])
        add(f"{prefix}/stats", stats, methods=["GET"], tags=[tag])
        add(f"{prefix}/thumbnails/{{file}}", thumbnail, methods=["GET"], tags=[tag], include_in_schema=False)

    @app.post("/embed")
    def embed(file: Annotated[Optional[UploadFile], File(description="an image or a video clip")] = None,
              text: Annotated[Optional[str], Form()] = None,
              domain: Annotated[Optional[str], Form(description="embed as this domain (default: live for "
                                                                "uploads, page for text)")] = None,
              x_api_key: Annotated[Optional[str], Header()] = None):
        """The vector the index's model gives an upload and/or text, as a query of `domain`."""
        service = reader(None, x_api_key)
        data, filename = _upload(file, limit)
        return service.embed(data=data, filename=filename, text=text or "", domain=domain or None)

    @app.get("/recommend")
    def recommend_user(user: str, k: int = 10, x_api_key: Annotated[Optional[str], Header()] = None):
        """Next items for a user the recommender was trained with."""
        return {"user": user, "results": _with_urls(reader(None, x_api_key).recommend(user=user, k=k))}

    @app.post("/recommend")
    def recommend_history(request: RecommendRequest, x_api_key: Annotated[Optional[str], Header()] = None):
        """Next items after an explicit history (a new or anonymous session)."""
        return {"results": _with_urls(reader(None, x_api_key).recommend(history=request.history, k=request.k))}

    @app.post("/recommend/items")
    def add_items(request: AddItemsRequest, x_api_key: Annotated[Optional[str], Header()] = None):
        """New products into the recommender's catalogue without retraining: recommendable when this returns."""
        service = writer(None, x_api_key)
        return service.add_rec_items([(i.item_id, i.text) for i in request.items])

    @app.delete("/recommend/items/{item_id}")
    def remove_item(item_id: str, x_api_key: Annotated[Optional[str], Header()] = None):
        """Retire a product: never recommended again."""
        return writer(None, x_api_key).remove_rec_items([item_id])

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return resources.files("prodlens.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    for register in extra_routes or ():
        register(app, state)
    return app


def _prefix(name: str | None) -> str:
    return f"/indexes/{name}" if name is not None else ""


def _without_name(func):
    """The endpoint of the default index: `func` without its `name` parameter (which names an index in the
    /indexes/{name}/... paths), so it is neither a query parameter nor in the schema."""
    sig = inspect.signature(func)
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def wrapper(*args, **kwargs):
            return await func(*args, **kwargs)
    else:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            return func(*args, **kwargs)
    wrapper.__signature__ = sig.replace(parameters=[p for p in sig.parameters.values() if p.name != "name"])
    return wrapper


def _validation_body(errors) -> dict:
    """422 body: one sentence naming every wrong field (an unknown one with the name this API uses), and the
    errors as pydantic lists them."""
    said = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        where = ".".join(loc) or "body"
        if e.get("type") == "extra_forbidden":
            field = loc[-1] if loc else "?"
            hint = f" (did you mean {FIELD_HINTS[field]!r}?)" if field in FIELD_HINTS else ""
            said.append(f"unknown field {where!r}{hint}")
        else:
            said.append(f"{where}: {e.get('msg', 'invalid')}")
    clean = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]
    return {"detail": "; ".join(said), "errors": clean}


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip() == "application/json"


def _search_query(q: SearchRequest, filename: str, image_field: str) -> SearchQuery:
    """The service's query of a JSON search (alone or in a batch); `image_field` names the image in errors."""
    data = _base64(q.image_base64, image_field) if q.image_base64 else None
    return SearchQuery(data=data, filename=filename, text=q.text or "", sample_id=q.sample_id, k=q.k,
                       offset=q.offset, domains=q.domains, categories=q.categories or None, filters=q.filters,
                       per_product=q.per_product, query_domain=q.query_domain, min_score=q.min_score,
                       retrieval=q.retrieval)


async def _form_upload(form, limit: int) -> tuple[bytes | None, str]:
    """A form's `file` (a plain string field of that name is no upload), read in a worker thread."""
    upload = form.get("file")
    return await run_in_threadpool(_upload, upload if not isinstance(upload, str) else None, limit)


def _parsed(model, raw: bytes):
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None


def _form_schema() -> dict:
    string, integer = {"type": "string"}, {"type": "integer"}
    return {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary", "description": "an image or a video clip"},
        "text": string, "sample_id": string, "k": integer, "offset": integer,
        "domain": {"type": "array", "items": string}, "category": {"type": "array", "items": string},
        "filters": {"type": "string", "description": "a JSON object (as in the JSON body)"},
        "per_product": {"type": "boolean"}, "query_domain": string, "min_score": {"type": "number"},
        "retrieval": {"type": "string", "enum": ["vector", "lexical", "hybrid"]}}}


def _form_value(form, name: str, kind, default=None):
    value = form.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        if kind is bool:
            if value.strip().lower() not in ("true", "false", "1", "0", "on", "off", "yes", "no"):
                raise ValueError
            return value.strip().lower() in ("true", "1", "on", "yes")
        return kind(value)
    except (TypeError, ValueError):
        raise BadQuery(f"form field {name}: {value!r} is not a valid {kind.__name__}", 422) from None


def _form_json(form, name: str):
    value = form.get(name)
    if value is None or not str(value).strip():
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise BadQuery(f"form field {name}: not valid JSON", 422) from None


async def _form_query(form, limit: int) -> SearchQuery:
    unknown = sorted(set(form.keys()) - FORM_FIELDS)
    if unknown:
        raise BadQuery(f"unknown form field {unknown[0]!r}; the form takes {', '.join(sorted(FORM_FIELDS))}", 422)
    data, filename = await _form_upload(form, limit)
    return SearchQuery(data=data, filename=filename, text=_form_value(form, "text", str, ""),
                       sample_id=_form_value(form, "sample_id", str), k=_form_value(form, "k", int, 10),
                       offset=_form_value(form, "offset", int, 0),
                       domains=_split_values(form.getlist("domain")) if "domain" in form else None,
                       categories=[c for c in form.getlist("category") if c.strip()] or None,
                       filters=_form_json(form, "filters"), per_product=_form_value(form, "per_product", bool, True),
                       query_domain=_form_value(form, "query_domain", str),
                       min_score=_form_value(form, "min_score", float),
                       retrieval=_form_value(form, "retrieval", str))


async def _form_item(form, limit: int) -> ItemDocument:
    known = {"file", "product_id", "title", "category", "description", "attributes"}
    unknown = sorted(set(form.keys()) - known)
    if unknown:
        raise BadQuery(f"unknown form field {unknown[0]!r}; an item takes {', '.join(sorted(known))}", 422)
    data, _ = await _form_upload(form, limit)
    attributes = _form_json(form, "attributes") or {}
    if not isinstance(attributes, dict):
        raise BadQuery("form field attributes: a JSON object of name → value", 422)
    return ItemDocument(_form_value(form, "product_id", str, ""), _form_value(form, "title", str, ""),
                        _form_value(form, "category", str, ""), _form_value(form, "description", str, ""),
                        attributes, data)


def _with_urls(hits: list[dict], prefix: str = "") -> list[dict]:
    for h in hits:
        h["thumbnail"] = f"{prefix}/thumbnails/{h['thumbnail']}" if h.get("thumbnail") else None
    return hits


def _with_urls_body(body: dict, prefix: str = "") -> dict:
    _with_urls(body["results"], prefix)
    return body


def _base64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadQuery(f"{what} is not valid base64", 422) from None


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
