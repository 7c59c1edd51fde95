"""Shopper text queries for the Grocery Store products, written by a local instruct model (not by the hands that wrote
the search method), for fitting (`--prompt 1`) and for reporting (`--prompt 2`, generated after the method is frozen).

The model gets one product at a time — its name, kind and description — and a style to write in: another word for
it (a synonym, another variety of English, the shop's own Swedish), what it looks like, the brand and variant, a
cooking use. It never sees the catalogue's other products or the search method. Queries that name the product
verbatim are dropped (they test nothing new).

    python bench/generate_shopper_queries.py --prompt 1 --out bench/data/grocery_queries_fit.tsv
    python bench/generate_shopper_queries.py --prompt 2 --out bench/data/grocery_queries_heldout.tsv
"""
from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from pathlib import Path

from prodlens import atomic
from prodlens.text.llm import offline_llm_path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from shared_data import grocery_root  # noqa: E402

STYLES_1 = {
    "synonym": "another everyday word for it that a shopper in Britain, America or Australia might use instead",
    "look": "what it looks like (colour, shape, skin, packaging), without its name",
    "use": "what the shopper wants to cook or drink with it, without its name",
    "swedish": "its name in Swedish, the language of the shop",
}
STYLES_2 = {
    "synonym": "a regional or informal name for it, the way a tourist or a child would ask for it",
    "look": "a short description of its appearance, as if the shopper forgot the name",
    "use": "a recipe or a need it is for, as a shopper types into a supermarket app",
    "swedish": "the Swedish word a local would type for it, lower case",
    "variant": "the brand or variety plus one distinguishing detail (fat level, flavour, colour, organic)",
}
SYSTEM_1 = ("You write search queries that real shoppers type into a grocery store's website. Answer with the query "
            "only: 2 to 6 words, lower case, no quotes, no explanation.")
SYSTEM_2 = ("Pretend to be a hurried customer of a Swedish supermarket's online shop. Reply with one short search "
            "box entry and nothing else.")


def products(root: Path) -> list[dict]:
    out = []
    with open(root / "classes.csv", newline="") as f:
        for row in csv.DictReader(f):
            pid, kind = row["Class Name (str)"], row["Coarse Class Name (str)"]
            desc_path = root / row["Product Description Path (str)"].lstrip("/")
            desc = desc_path.read_text(encoding="utf-8", errors="replace").strip() if desc_path.is_file() else ""
            out.append({"product_id": pid, "name": pid.replace("-", " "), "kind": kind.replace("-", " "),
                        "description": " ".join(desc.split()[:60])})
    return out


def clean(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"^(query|search|answer)\s*:\s*", "", line, flags=re.I)
    return " ".join(re.sub(r"[\"“”*]", "", line).split()).strip(" .").lower()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-1.5b", help="an offline LLM name or a GGUF path")
    ap.add_argument("--prompt", type=int, default=1, choices=(1, 2))
    ap.add_argument("--root", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from llama_cpp import Llama

    root = grocery_root(args.root)
    path = args.model if args.model.endswith(".gguf") else str(offline_llm_path(args.model))
    llm = Llama(model_path=path, n_ctx=1024, n_threads=2, verbose=False)
    styles, system = (STYLES_1, SYSTEM_1) if args.prompt == 1 else (STYLES_2, SYSTEM_2)
    rows = []
    for n, p in enumerate(products(root)):
        # each product gets two styles, rotating, so every style covers every kind of product
        names = list(styles)
        for style in (names[n % len(names)], names[(n + 2) % len(names)]):
            if style == "variant" and p["kind"].lower() == p["name"].lower():
                style = "look"  # loose produce has no brand or variant
            user = (f"Product: {p['name']} ({p['kind']}). {p['description']}\nWrite: {styles[style]}."
                    if args.prompt == 1 else
                    f"You want: {p['name']}, a kind of {p['kind'].lower()}. About it: {p['description']}\n"
                    f"Type {styles[style]}.")
            query = ""
            for attempt in range(3):
                out = llm.create_chat_completion([{"role": "system", "content": system},
                                                  {"role": "user", "content": user}], temperature=0.7, top_p=0.95,
                                                 max_tokens=24, seed=args.seed * 100 + n * 10 + attempt)
                query = clean(out["choices"][0]["message"]["content"])
                if query and query != p["name"].lower() and len(query) <= 80:
                    break
            if not query:
                continue
            rows.append({"query": query, "product_id": p["product_id"], "style": style,
                         "model": args.model, "prompt": args.prompt})
            print(f"{p['product_id']:<40} {style:<8} {query}", flush=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["query", "product_id", "style", "model", "prompt"], delimiter="\t")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(args.out, buf.getvalue())
    print(f"written {args.out} ({len(rows)} queries)")


if __name__ == "__main__":
    main()
