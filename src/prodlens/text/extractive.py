"""The non-LLM fallback, named as such: pick the transcript clauses closest to the product vocabulary, and name
the product from them.

Speech is cut into clauses at discourse markers (ASR gives no punctuation; see `injection.split_clauses`). Clauses are
scored with the text encoder against the title (when there is one) and a few product-description prototypes, minus
their similarity to stream chatter prototypes (greetings, follow requests, prices). The best ones, in their original
order, are the summary; sizes and colours found in them become attributes.

Mentions of a product are runs of words between function words ("today i show you | lumoka organic shampoo |
five hundred ml", `mention_runs`); which of them names the product is decided by `evidence` for every backend.
Every output string is copied from the input, so it is grounded by construction.
"""
from __future__ import annotations

import re

import numpy as np

from .facts import ProductFacts
from .injection import CJK_CHARS, has_cjk, split_clauses
from .zh import name_span, windows

PRODUCT_PROTOTYPES = [
    "this product is made of", "the brand of this product", "it comes in a bottle of 500 ml",
    "the flavour and ingredients of this food", "this cream is for dry skin", "the colour and size of the item",
]
CHATTER_PROTOTYPES = [
    "hello everyone welcome back to my live stream", "please like and follow and subscribe",
    "the link is below, buy now", "thank you for watching, see you tomorrow", "what did you eat today",
]
# What a product mention is close to (generic e-commerce goods), and what chatter words are close to.
NAME_PROTOTYPES = ["shampoo", "face cream", "lipstick", "perfume", "coffee beans", "tea", "juice", "milk", "snack",
                   "chocolate", "pasta", "rice", "sauce", "vitamins", "supplement", "blender", "vacuum cleaner",
                   "headphones", "phone", "laptop", "sneakers", "dress", "jacket", "toy", "detergent", "dog food",
                   "cookware", "lamp", "watch", "backpack"]
CHATTER_WORDS = ["weather", "rain", "my cat", "lunch", "the game", "friends", "follow", "subscribe", "link", "price",
                 "comments", "tomorrow", "traffic", "movie", "my mom", "kids", "neighbour", "evening"]
SIZE = re.compile(r"\b\d+(?:[.,]\d+)?\s?(?:ml|millilitres?|milliliters?|l|litres?|liters?|g|grams?|kg|kilos?|oz|"
                  r"pack|pieces?|tablets?|capsules?)\b", re.IGNORECASE)
COLOURS = {"red", "green", "blue", "yellow", "orange", "purple", "black", "white", "pink", "brown", "grey", "gray",
           "gold", "silver", "beige", "teal"}


# Words that are never part of a product's name: pronouns, articles, presenter verbs, time words, fillers.
FUNCTION_WORDS = set("""a an the and or of for to in on with at this that these those is are was were be been it its
i you we they he she my your our their me us them so very really just like here there now today tonight guys everyone
hello hi hey okay ok yes no not do does did have has had will would can could should about as if but also than then
am im i'm must say said says think know want need make makes made got get gets show showing shows look looking check try trying using use uses used take takes taking love
loves bought buy buying recommend recommending introducing present presenting new favourite favorite one ones
big small little super pretty quite lol um uh oh well let lets let's start begin welcome back live stream video
morning evening night dinner lunch breakfast every each all some more most best good great nice amazing thing stuff
item product products brand called named number means what which who how thanks thank watching watch subscribe
follow like likes share comment comments link below please forget don't dont see bye
""".split())
BRAND_MARKERS = {"from", "by"}
NUMBER_WORDS = set("""zero one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty
fifty hundred thousand half""".split())
UNITS = set("""ml millilitre millilitres milliliter milliliters l litre litres liter liters g gram grams kg kilo kilos
oz pack packs piece pieces tablet tablets capsule capsules bag bags bottle bottles box can jar""".split())
ZH_FUNCTION = re.compile(r"今天|现在|给大家|大家|推荐|介绍|这款|这个|那个|一款|一个|我们|我|你们|你|就是|是|的|了|一下|"
                         r"看看|来看|真的|非常|特别|很|超|用|吃|喝|买|家人们|宝宝们|姐妹们|朋友们|好")

ZH_INTRODUCED = re.compile(f"(?:推荐|介绍|这款|这个|一款|用的是)([{CJK_CHARS}]{{2,}})")


def split_sentences(text: str) -> list[str]:
    """Clauses of the text, cut into ~20-word windows when a clause runs on (Chinese: where the speech turns,
    `zh.windows`)."""
    out = []
    for clause in split_clauses(text):
        if has_cjk(clause):
            out.extend(windows(clause))
            continue
        words = clause.split()
        for i in range(0, len(words), 20):
            chunk = " ".join(words[i:i + 20]).strip()
            if chunk:
                out.append(chunk)
    return out


PRESENTED = re.compile(r"(?:this is|these are|here is|here are|it is|it's|show you|showing you|look at|check out|"
                       r"got|have|introducing|presenting|using|use|take|recommend|love|bought|try|review|unboxing)"
                       r"(?: (?:the|a|an|my|our|this|these|some|new))*$")
ASIDE = {"tomorrow", "yesterday", "maybe", "may", "next", "another", "other", "also", "instead", "than", "last",
         "later"}


def mention_runs(clause: str) -> list[tuple[str, str, int]]:
    """(run, brand said after it, cue) for each run of name words in a clause: "shampoo from lumoka" → ("shampoo",
    "lumoka", ...). Sizes are cut off the end of a run. The cue is +1 when the host presents the run ("this is the
    ...", "i show you ..."), -1 when it is an aside ("tomorrow maybe the ...": another product, strongly demoted),
    else 0."""
    if has_cjk(clause):
        runs = (name_span(r) for r in ZH_FUNCTION.split(re.sub(r"\s+", "", clause)) if len(r) >= 2)
        return [(r, "", 0) for r in runs if len(r) >= 2]
    tokens = [t.strip("'") for t in re.findall(r"[\w']+", clause.lower()) if t.strip("'")]
    runs, current, start = [], [], 0
    for i, t in enumerate(tokens + ["."]):
        if t in FUNCTION_WORDS or t in BRAND_MARKERS or t == "." or t in NUMBER_WORDS or t in UNITS or t.isdigit():
            if current:
                runs.append((current, t, start))
            current = []
        else:
            if not current:
                start = i
            current.append(t)
    out = []
    for i, (words, stop, start) in enumerate(runs):
        while words and (words[-1] in NUMBER_WORDS or words[-1] in UNITS or words[-1].isdigit()):
            words = words[:-1]
        if not words:
            continue
        before = tokens[max(0, start - 4):start]
        cue = -1 if ASIDE & set(before) else 1 if PRESENTED.search(" ".join(before)) else 0
        brand = " ".join(runs[i + 1][0][:2]) if stop in BRAND_MARKERS and i + 1 < len(runs) else ""
        out.append((" ".join(words), brand, cue))
    return out


EXTRACTIVE_VERSION = "extractive-3"  # part of every summary cache key: a changed algorithm never serves old output


class ExtractiveSummarizer:
    """The summary and attributes from the kept clauses closest to product talk; the product's name and brand come
    from `evidence.EvidenceScorer` (as for every backend)."""
    name = "extractive"

    def __init__(self, text_encoder, max_sentences: int = 2):
        self.encoder = text_encoder
        self.max_sentences = max_sentences
        self._protos = None

    def _prototypes(self):
        if self._protos is None:
            self._protos = (self.encoder.encode(PRODUCT_PROTOTYPES), self.encoder.encode(CHATTER_PROTOTYPES))
        return self._protos

    def summarize(self, clauses: list[str], title: str = "") -> ProductFacts:
        """`clauses`: the kept clauses (instructions and clauses naming a rival product already left out)."""
        sentences = [s for c in clauses for s in split_sentences(c)]
        if not sentences:
            return ProductFacts()
        product, chatter = self._prototypes()
        vecs = self.encoder.encode(sentences)
        score = (vecs @ product.T).max(axis=1) - (vecs @ chatter.T).max(axis=1)
        if title:
            score = score + vecs @ self.encoder.encode([title])[0]
        keep = sorted(np.argsort(-score)[: self.max_sentences].tolist())
        chosen = [sentences[i] for i in keep if score[i] > -0.05]
        text = " ".join(chosen)
        attributes = [m.group(0) for m in SIZE.finditer(text)]
        attributes += [w for w in re.findall(r"\w+", text.lower()) if w in COLOURS]
        return ProductFacts(attributes=attributes[:12], summary=text[:600])
