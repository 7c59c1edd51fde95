"""Fit the packaged relevance model (prodlens/index/relevance.json): the logistic model that turns a hit's retrieval
signals into P(this is the product searched for), per query kind — and so also the fusion of vector and BM25
rankings for text queries.

Fitted on data no reported number uses: the Grocery *train* in-store photos (image queries) and generated text query
sets (`--queries`, default bench/data/grocery_queries_fit.tsv, written by bench/generate_shopper_queries.py
--prompt 1, and the older bench/data/grocery_shopper_queries.tsv) against the Grocery product pages indexed with the
default zero-shot model. Reported after fitting: the calibration on the Grocery *val* photos (expected calibration
error of the top hit's relevance, and top-1) — text is reported by bench/hybrid_search.py on held-out query sets.

    python bench/fit_relevance.py [--root ../shared/data/grocery-store] [--photos 600] [--out PATH]
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from shared_data import grocery_root  # noqa: E402

PACKAGED = HERE.parent / "src" / "prodlens" / "index" / "relevance.json"
FIT_QUERIES = [HERE / "data" / "grocery_queries_fit.tsv", HERE / "data" / "grocery_shopper_queries.tsv"]
FEATURES = {"text": ["q_cos", "q_lead", "q_name_rr", "q_text_rr", "q_read_rr"],
            "text:vector": ["q_cos", "q_lead"],
            "text:lexical": ["q_name_rr", "q_text_rr", "q_read_rr"],
            "image": ["q_cos", "q_lead"],
            "text+rewrite": ["q_cos", "q_lead", "q_name_rr", "q_text_rr", "q_read_rr",
                             "rw_cos", "rw_lead", "rw_name_rr", "rw_text_rr"]}
DEPTH = 100


def read_queries(paths: list[Path], products) -> list[tuple[str, str]]:
    out = []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            out += [(r["query"], r["product_id"]) for r in csv.DictReader(f, delimiter="\t")
                    if r["product_id"] in products and r["query"].strip()]
    return out


def examples(index, vectors, texts, products, kind_texts: bool, rewrites=None) -> list[tuple[dict, np.ndarray]]:
    """One (signals, labels) per query: its candidates `DEPTH` deep in every ranking. `rewrites`: (text, vector)
    of each query's rewriting (or None), as the service adds them."""
    rows = []
    for n, (v, t, pid) in enumerate(zip(vectors, texts, products)):
        searched, lexical = {"q": v}, ({"q": t} if kind_texts and t else {})
        if rewrites is not None:
            if rewrites[n] is None:
                continue
            lexical["rw"], searched["rw"] = rewrites[n]
        ids, signals = index.candidates(searched, lexical, DEPTH, None, (None, None, ()))
        labels = np.array([index.items[int(i)].product_id == pid for i in ids], dtype=np.int64)
        rows.append((signals, labels))
    return rows


def top1_calibration(model, kind: str, rows) -> dict:
    """Top-1 accuracy, mean top relevance and expected calibration error (10 bins) of the top hit."""
    conf, right = [], []
    for signals, labels in rows:
        scores = model.score(kind, signals, len(labels))
        best = int(np.argmax(scores))
        conf.append(float(scores[best]))
        right.append(int(labels[best]))
    conf, right = np.array(conf), np.array(right)
    bins = np.minimum((conf * 10).astype(int), 9)
    ece = sum(abs(conf[bins == b].mean() - right[bins == b].mean()) * (bins == b).mean()
              for b in range(10) if (bins == b).any())
    return {"queries": len(rows), "top1": round(float(right.mean()), 4),
            "mean_relevance": round(float(conf.mean()), 4), "ece": round(float(ece), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=None)
    ap.add_argument("--queries", type=Path, nargs="*", default=FIT_QUERIES)
    ap.add_argument("--photos", type=int, default=600, help="train photos to fit on (sampled)")
    ap.add_argument("--rewriter", default="qwen2.5-1.5b", help="the LLM whose rewrites the text+rewrite kind is fitted "
                                                               "on ('' to skip)")
    ap.add_argument("--out", type=Path, default=PACKAGED)
    args = ap.parse_args()
    from prodlens import api
    from prodlens.cache import open_cache
    from prodlens.catalog import load_catalog
    from prodlens.index import relevance
    from prodlens.index.query import query_model

    root = grocery_root(args.root)
    cache = open_cache()
    catalog = load_catalog("grocery", root)
    with tempfile.TemporaryDirectory() as tmp:
        index, _ = api.index_catalog(catalog, Path(tmp) / "index", ("page",), cache=cache, progress=False)
        model, _ = query_model(index.record, cache)
        queries = read_queries(args.queries, catalog.products)
        text_vectors = model.embed_queries([[] for _ in queries], [q for q, _ in queries], "page")
        text_rows = {kind: examples(index, text_vectors, [q for q, _ in queries], [p for _, p in queries],
                                    kind != "text:vector") for kind in ("text", "text:vector", "text:lexical")}
        if args.rewriter:
            from prodlens.text.rewrite import QueryRewriter

            rewriter = QueryRewriter(args.rewriter, list(index.category_products()), cache)
            said = [rewriter.rewrite(q) for q, _ in queries]
            vectors = dict(zip([s for s in said if s], model.embed_queries([[] for s in said if s],
                                                                          [s for s in said if s], "page")))
            text_rows["text+rewrite"] = examples(index, text_vectors, [q for q, _ in queries],
                                                 [p for _, p in queries], True,
                                                 [(s, vectors[s]) if s else None for s in said])
        photo_rows = {}
        for split in ("train", "val"):
            photos = catalog.select(domains=["live"], split=split)
            rng = random.Random(0)
            keep = sorted(rng.sample(range(len(photos.samples)), min(args.photos, len(photos.samples))))
            subset = photos.__class__.build(photos.root, list(photos.products.values()),
                                            [photos.samples[i] for i in keep], name=photos.name)
            emb = model.embed_catalog(subset, progress=True)
            photo_rows[split] = examples(index, emb.vectors, [""] * len(emb), emb.product_ids, False)
        fitted = relevance.fit({**text_rows, "image": photo_rows["train"]}, FEATURES, model_id=index.model_id,
                               fitted_on=f"grocery train photos ({len(photo_rows['train'])}) and "
                                         f"{len(queries)} generated text queries ({', '.join(p.name for p in args.queries)})")
        fitted.metrics = {"image val": top1_calibration(fitted, "image", photo_rows["val"]),
                          "image train": top1_calibration(fitted, "image", photo_rows["train"]),
                          "text fit": top1_calibration(fitted, "text", text_rows["text"]),
                          "text:vector fit": top1_calibration(fitted, "text:vector", text_rows["text:vector"])}
        if "text+rewrite" in text_rows:
            fitted.metrics["text+rewrite fit"] = top1_calibration(fitted, "text+rewrite", text_rows["text+rewrite"])
    args.out.write_text(json.dumps(fitted.to_dict(), indent=2) + "\n")
    for name, m in fitted.metrics.items():
        print(f"{name:<16} {m}")
    for kind, m in fitted.kinds.items():
        print(f"{kind:<14}", dict(zip(m.features, [round(c, 2) for c in m.coef])), "intercept", round(m.intercept, 2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
