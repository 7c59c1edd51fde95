"""Shopper queries rewritten into the catalogue's words by a local instruct model: "courgette" → "zucchini",
"gurka" (Swedish) → "cucumber", "something for guacamole" → "avocado", "long purple vegetable" → "aubergine".

The rewriting is one more query for search, never a replacement: its vector and its BM25 rankings are signals of the
relevance model beside the query's own (prodlens.index.relevance), so a wrong rewrite costs little when the query
itself is clear. The model sees the query and the catalogue's vocabulary (its category names), nothing else — not
the seller's texts, so nothing in the catalogue can steer it. Answers are greedy, cut to a few words, and cached by
(model, prompt version, vocabulary, query): a repeated query costs one cache lookup.

Models: an offline GGUF by name (`qwen2.5-0.5b`, `qwen2.5-1.5b`, ...; llama.cpp in-process), a GGUF path, or an
OpenAI-compatible endpoint `http://host:port/v1::model` (vLLM, llama.cpp's server) for serving at scale.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import urllib.request

from ..errors import ProdlensError

PROMPT_VERSION = "rewrite-2"
MAX_VOCABULARY = 200  # category names shown to the model (a longer list costs more than it helps a small model)
MAX_WORDS = 6
SYSTEM = ("A shopper typed a search into a grocery shop's website. Reply with the common English name of the food "
          "they want, 1 to 3 words, nothing else. If the search is in Swedish or another language, translate it. If it "
          "uses a British, American or Australian word, give the usual name. If it describes a look or a dish, name "
          "the ingredient. The shop's departments, for reference: {vocabulary}.")


class QueryRewriter:
    def __init__(self, model: str = "qwen2.5-1.5b", vocabulary: list[str] = (), cache=None, llm=None):
        """`llm`: an already loaded llama.cpp model of `model` (another vocabulary's rewriter shares it)."""
        self.model = model
        self.vocabulary = sorted({v.replace("-", " ") for v in vocabulary if v})[:MAX_VOCABULARY]
        self.cache = cache
        self._llm = llm
        self._lock = threading.Lock()  # one generation at a time: a llama.cpp context is not thread-safe
        digest = hashlib.sha256(json.dumps([PROMPT_VERSION, model, self.vocabulary]).encode()).hexdigest()[:16]
        self.key = f"rewrite:{digest}"

    def load(self) -> "QueryRewriter":
        """Load the model now (a server checks at start-up that it can rewrite, rather than at its first query)."""
        if "://" not in self.model and self._llm is None:
            self._llm = _load(self.model)
        return self

    def system(self) -> str:
        return SYSTEM.format(vocabulary=", ".join(self.vocabulary) or "all kinds of groceries")

    def rewrite(self, query: str) -> str:
        """The query in the catalogue's words ("" when the model has nothing to add)."""
        query = " ".join(query.split())
        if not query:
            return ""
        if self.cache is not None:
            hit = self.cache.get_record(self.key, "rewrite", query)
            if hit is not None:
                return hit["text"]
        with self._lock:
            answer = clean(self._ask(query))
        if answer.lower() == query.lower():
            answer = ""
        if self.cache is not None:
            self.cache.put_record(self.key, "rewrite", query, {"text": answer})
        return answer

    def _ask(self, query: str) -> str:
        messages = [{"role": "system", "content": self.system()}, {"role": "user", "content": query}]
        if "://" in self.model:
            return _ask_http(self.model, messages)
        self.load()
        out = self._llm.create_chat_completion(messages, temperature=0.0, max_tokens=16)
        return out["choices"][0]["message"]["content"] or ""


def clean(text: str) -> str:
    """The answer's first line, without quotes, labels or a trailing full stop, at most MAX_WORDS words."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"^(answer|product|name)\s*:\s*", "", line, flags=re.I)
    line = re.sub(r"[\"“”*`]", "", line).strip(" .")
    return " ".join(line.split()[:MAX_WORDS])


def _load(model: str):
    from .llm import OFFLINE_LLMS, offline_llm_path

    path = str(offline_llm_path(model)) if model in OFFLINE_LLMS else model
    if not os.path.isfile(path):
        raise ProdlensError(f"query rewriter: {model!r} is neither an offline LLM name nor a GGUF file")
    try:
        from llama_cpp import Llama
    except ImportError as e:
        raise ProdlensError("query rewriting needs llama-cpp-python (make test-setup builds it; or pip install "
                            "llama-cpp-python), or an OpenAI-compatible server: --rewriter http://HOST:PORT/v1::MODEL") \
            from e
    return Llama(model_path=path, n_ctx=1024, n_threads=os.cpu_count(), verbose=False)


def _ask_http(spec: str, messages: list[dict]) -> str:
    url, _, name = spec.partition("::")
    body = json.dumps({"model": name, "messages": messages, "temperature": 0.0, "max_tokens": 16}).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get("PRODLENS_LLM_API_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['PRODLENS_LLM_API_KEY']}"
    request = urllib.request.Request(url.rstrip("/") + "/chat/completions", body, headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read())["choices"][0]["message"]["content"] or ""
    except (OSError, ValueError, KeyError) as e:
        raise ProdlensError(f"query rewriter at {url} failed: {e}") from e
