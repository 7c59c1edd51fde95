"""Commands: the vector index (build / add / remove / info / search) and the search service."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..catalog.schema import DOMAINS
from ..errors import BadRecords, ProdlensError
from ..rows import read_lines
from ..index.vectors import IndexConfig
from ..serve.config import ServeConfig
from .common import RootOpt, SourceArg, SplitOpt, _fail, _model_options, _print_bad, api, app, catalogs, console
from .options import config_options

index_app = typer.Typer(no_args_is_help=True, help="Build and edit the product vector index (FAISS).")
app.add_typer(index_app, name="index")

DomainsOpt = typer.Option("page", "--domains", help=f"domains to index, comma-separated ({', '.join(DOMAINS)})")


def _domains(value: str) -> tuple[str, ...]:
    out = tuple(d.strip() for d in value.split(",") if d.strip())
    unknown = [d for d in out if d not in DOMAINS]
    if unknown or not out:
        raise typer.BadParameter(f"domains must be among {', '.join(DOMAINS)}, got {value!r}")
    return out


def _report_written(index, stats: dict) -> None:
    s = index.stats()
    console.print(f"index {index.path}: {s['items']} items of {s['products']} products "
                  f"({', '.join(f'{n} {d}' for d, n in s['domains'].items())}), {s['kind']}, dim {s['dim']}, "
                  f"version {s['version']}; added {stats['added']}, replaced {stats['replaced']}", markup=False)
    console.print(f"model: {s['model']} (id {s['model_id']})", markup=False)
    _print_bad(stats["bad"])

_INDEX = IndexConfig()  # the defaults the options show


@index_app.command("build")
@_model_options
def index_build(source: str = SourceArg, root: Path = RootOpt, split: Optional[str] = SplitOpt,
                out: Path = typer.Option(..., "--out", help="index directory to create"),
                checkpoint: Optional[Path] = typer.Option(None, help="trained run directory, .safetensors checkpoint or saved model directory (default: zero-shot)"),
                domains: str = DomainsOpt,
                store: str = typer.Option(_INDEX.store, help="where the vectors live: faiss (files in --out), "
                                          "milvus://HOST:PORT, or milvus-lite[:FILE.db] (a local Milvus Lite file)"),
                kind: str = typer.Option(_INDEX.kind, help="flat (exact), hnsw, ivfpq, or auto (flat under 100k vectors)"),
                hnsw_m: int = typer.Option(_INDEX.hnsw_m, help="HNSW graph degree"),
                ef_search: int = typer.Option(_INDEX.hnsw_ef_search, help="HNSW search breadth"),
                ivf_lists: int = typer.Option(_INDEX.ivf_lists, help="IVF lists (0: about 4*sqrt(n))"),
                ivf_probe: int = typer.Option(_INDEX.ivf_probe, help="IVF lists probed per query"),
                thumbnails: bool = typer.Option(True, "--thumbnails/--no-thumbnails", help="store result thumbnails"),
                *, config, cache):
    """Embed a catalogue's samples (product pages by default) and write a new index."""
    if (out / "CURRENT").exists():
        _fail(f"{out} already holds an index: `prodlens index add {out} ...` adds to it")
    try:
        index_config = IndexConfig(store=store, kind=kind, hnsw_m=hnsw_m, hnsw_ef_search=ef_search, ivf_lists=ivf_lists,
                                   ivf_probe=ivf_probe)
        catalog = catalogs.load_catalog(source, root, split)
        index, stats = api.index_catalog(catalog, out, _domains(domains), config, checkpoint, index_config, cache,
                                         thumbnails)
    except (ProdlensError, ValueError) as e:
        _fail(str(e))
    _report_written(index, stats)


@index_app.command("add")
def index_add(index_dir: Path = typer.Argument(..., help="an index directory"), source: str = SourceArg,
              root: Path = RootOpt, split: Optional[str] = SplitOpt, domains: str = DomainsOpt,
              thumbnails: bool = typer.Option(True, "--thumbnails/--no-thumbnails"),
              cache_dir: Optional[Path] = typer.Option(None, help="feature cache directory")):
    """Embed samples with the index's own model and add them (already indexed samples are replaced)."""
    try:
        catalog = catalogs.load_catalog(source, root, split)
        index, stats = api.index_catalog(catalog, index_dir, _domains(domains), cache=api.open_cache(cache_dir),
                                         thumbnails=thumbnails)
    except ProdlensError as e:
        _fail(str(e))
    _report_written(index, stats)


@index_app.command("remove")
def index_remove(index_dir: Path = typer.Argument(..., help="an index directory"),
                 sample: list[str] = typer.Option([], "--sample", help="sample id to remove (repeatable)"),
                 product: list[str] = typer.Option([], "--product", help="remove every sample of this product")):
    """Remove samples or whole products from the index (no re-embedding, no full rebuild)."""
    from ..index import ProductIndex

    if not sample and not product:
        _fail("name at least one --sample or --product to remove")
    try:
        index = ProductIndex.open(index_dir)
        missing = [f"sample {s}" for s in sample if index.item(s) is None]
        known_products = {it.product_id for it in index.items.values()}
        missing += [f"product {p}" for p in product if p not in known_products]
        removed = index.remove(sample, product)
        if removed:
            index.save()
    except ProdlensError as e:
        _fail(str(e))
    console.print(f"removed {removed} item(s); {len(index)} left" + (f"; not found: {', '.join(missing)}" if missing
                                                                    else ""), markup=False)
    if missing:  # as rm: what was found is removed, and a name that matched nothing is an error
        raise typer.Exit(1)


@index_app.command("info")
def index_info(index_dir: Path = typer.Argument(..., help="an index directory")):
    """What an index holds and which model made it."""
    import json

    from ..index import ProductIndex

    try:
        index = ProductIndex.open(index_dir)
    except ProdlensError as e:
        _fail(str(e))
    print(json.dumps({**index.stats(), "signature": index.signature, "checkpoint": index.record.get("checkpoint"),
                      "created": index.record.get("created"), "updated": index.record.get("updated")}, indent=2))


@index_app.command("search")
def index_search(index_dir: Optional[Path] = typer.Argument(None, help="an index directory (not with --server)"),
                 file: Optional[Path] = typer.Option(None, "--file", help="an image or video clip"),
                 text: list[str] = typer.Option([], "--text", help="query text (repeatable: one query each; extra "
                                                "text with --file)"),
                 queries: Optional[Path] = typer.Option(None, "--queries", help="a file of query texts, one per line"),
                 sample: Optional[str] = typer.Option(None, "--sample", help="an indexed sample id"),
                 k: int = typer.Option(10, "-k", "--k", min=1, max=100),
                 domain: list[str] = typer.Option([], "--domain", help="only this domain (repeatable)"),
                 asr: bool = typer.Option(False, "--asr", help="transcribe the clip's speech into the query"),
                 checkpoint: Optional[Path] = typer.Option(None, help="where the index's trained model now lives"),
                 server: Optional[str] = typer.Option(None, "--server", help="ask a running `prodlens serve` "
                                                      "(e.g. http://127.0.0.1:8000) instead of loading the models"),
                 as_json: bool = typer.Option(False, "--json", help="one JSON object per query on stdout")):
    """Search from the command line (the HTTP API's code path). Many queries (--text repeated, --queries FILE) share
    one model load; with --server nothing is loaded here at all."""
    import json

    from ..serve import BadQuery, SearchQuery, SearchService, ServeConfig

    texts = list(text)
    if queries is not None:
        try:
            bad = BadRecords()
            found = read_lines(queries, bad, "queries")
        except OSError as e:
            _fail(f"{queries}: {e}")
        _print_bad(bad)
        texts += found
    try:
        data = file.read_bytes() if file else None
    except OSError as e:
        _fail(str(e))
    if data is not None or sample:  # one query: the file (with any text) or the sample
        asked = [SearchQuery(data=data, filename=file.name if file else "upload", text=" ".join(texts),
                             sample_id=sample, k=k, domains=domain or None)]
    else:
        asked = [SearchQuery(text=t, k=k, domains=domain or None) for t in texts] or [SearchQuery(k=k)]
    if server:
        answers = _ask_server(server, asked)
    else:
        if index_dir is None:
            _fail("give an index directory, or --server URL")
        try:
            service = SearchService(ServeConfig(str(index_dir), str(checkpoint) if checkpoint else None, asr=asr))
        except ProdlensError as e:
            _fail(str(e))
        answers = [a if isinstance(a, BadQuery) else a.to_json() for a in service.search_many(asked)]
    failed = 0
    for q, answer in zip(asked, answers):
        if isinstance(answer, BadQuery):
            failed += 1
            console.print(f"error: {answer}", markup=False, style="red")
            continue
        if as_json:
            print(json.dumps(answer))
            continue
        what = answer["query"].get("kind", "?") + (f" “{q.text}”" if q.text and q.data is None else "")
        table = Table(title=f"top {k} for the {what} query ({answer['took_ms']:.1f} ms)", title_justify="left")
        for col in ("#", "product", "score", "domain", "sample", "title"):
            table.add_column(col, justify="right" if col in ("#", "score") else "left")
        for i, h in enumerate(answer["results"], 1):
            table.add_row(str(i), escape(h["product_id"]), f"{h['score']:.3f}", h["domain"], escape(h["sample_id"]),
                          escape(h["title"]))
        console.print(table)
    if failed == len(asked):
        raise typer.Exit(1)


def _ask_server(url: str, asked) -> list:
    """The same queries through a running server's POST /search/batch."""
    import base64

    import httpx

    from ..serve import BadQuery

    payload = {"queries": [{"text": q.text or None, "sample_id": q.sample_id, "k": q.k, "domains": q.domains,
                            "image_base64": base64.b64encode(q.data).decode() if q.data is not None else None}
                           for q in asked]}
    try:
        r = httpx.post(url.rstrip("/") + "/search/batch", json=payload, timeout=600)
    except httpx.HTTPError as e:
        _fail(f"cannot reach {url}: {e}")
    if r.status_code != 200:
        _fail(f"{url} answered {r.status_code}: {r.text[:500]}")
    return [BadQuery(a["detail"], a["status"]) if a.get("status", 200) != 200 else a for a in r.json()["responses"]]


@app.command("serve")
@config_options(ServeConfig, exclude=("index_dir", "index_name", "indexes"), names={"rec_run": "rec"})
def serve_cmd(index: list[str] = typer.Option(..., "--index", help="an index directory (prodlens index build), or "
                                               "NAME=DIR; repeat to serve several, each at /indexes/NAME/ (the "
                                               "first also at /search)"),
              port: int = typer.Option(8000, "--port"), host: str = typer.Option("127.0.0.1", "--host"),
              workers: int = typer.Option(1, "--workers", min=1, help="server processes sharing the port and the "
                                          "index (read-only); each loads its own models"),
              *, config: ServeConfig):
    """Serve search over HTTP: POST /search, /search/batch, /embed, /items, GET /health, /stats, /metrics, the web
    page at /, schema at /docs."""
    from ..serve.app import run

    named: dict[str, str] = {}
    for n, spec in enumerate(index):
        name, sep, directory = spec.partition("=")
        name, directory = (name, directory) if sep else ("default" if n == 0 else Path(spec).name, spec)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
            _fail(f"--index {spec}: an index name is 1-64 letters, digits, '.', '_' or '-'")
        if name in named:
            _fail(f"--index {spec}: the name {name!r} is given twice")
        if not (Path(directory) / "CURRENT").exists():
            _fail(f"{directory} is not a prodlens index (build one with `prodlens index build`)")
        named[name] = directory
    (first, first_dir), *more = named.items()
    console.print(f"prodlens search: http://{host}:{port}/  (API docs at /docs)", markup=False)
    run(replace(config, index_dir=first_dir, index_name=first, indexes=dict(more)), host, port, workers=workers)
