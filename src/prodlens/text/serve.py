"""`prodlens llm-serve`: a minimal OpenAI-compatible chat endpoint in front of a local model (e.g. the offline
Gemma-3-270M), for machines without vLLM / Ollama / llama.cpp server. One request at a time (the model is not
thread-safe); bind it to loopback unless you mean otherwise."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 4 * 1024 * 1024


def render_chat(messages: list[dict]) -> str:
    """Chat turns → one completion prompt: system text, then each user turn followed by its assistant answer."""
    parts, pending = [], None
    for m in messages:
        role, content = m.get("role"), m.get("content")
        if not isinstance(content, str):
            raise ValueError("message content must be text")
        if role == "system":
            parts.append(content)
        elif role == "user":
            if pending is not None:
                parts.append(pending)
            pending = content
        elif role == "assistant":
            parts.append(f"{pending} {content}" if pending is not None else content)
            pending = None
        else:
            raise ValueError(f"unknown role {role!r}")
    if pending is not None:
        parts.append(pending)
    return "\n\n".join(parts)


def make_server(backend, host: str = "127.0.0.1", port: int = 8088) -> ThreadingHTTPServer:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # quiet
            pass

        def _send(self, code: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [{"id": backend.name, "object": "model"}]})
            elif self.path == "/health":
                self._send(200, {"status": "ok"})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self):
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                return self._send(404, {"error": {"message": "not found"}})
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                return self._send(413 if length > MAX_BODY else 400, {"error": {"message": "bad body size"}})
            try:
                request = json.loads(self.rfile.read(length))
                prompt = render_chat(request["messages"])
                temperature, seed = float(request.get("temperature") or 0.0), int(request.get("seed") or 0)
            except (ValueError, KeyError, TypeError) as e:
                return self._send(400, {"error": {"message": f"bad request: {e}"}})
            with lock:
                text = backend.generate(prompt, temperature, seed)
            self._send(200, {"id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion", "model": backend.name,
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": text}}]})

    return ThreadingHTTPServer((host, port), Handler)
