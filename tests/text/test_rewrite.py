"""Shopper queries rewritten into the catalogue's words: the answer cleaned and cached, the model shown the query and
the vocabulary only, through an OpenAI-compatible endpoint or llama.cpp in-process."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from prodlens.cache import FeatureCache
from prodlens.text.rewrite import QueryRewriter, clean
from tests.helpers import importable, require


def test_answers_are_cut_to_a_few_plain_words():
    assert clean('Answer: "Zucchini".\nThe shopper wants a courgette.') == "Zucchini"
    assert clean("**Bell pepper**") == "Bell pepper"
    assert clean("one two three four five six seven eight") == "one two three four five six"
    assert clean("") == ""


class ChatServer:
    """An OpenAI-compatible chat endpoint answering `reply`; it keeps the requests it was sent."""

    def __init__(self, reply: str):
        requests = self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                body = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def test_a_rewrite_is_asked_once_then_served_from_the_cache(tmp_path):
    server = ChatServer("Zucchini.")
    try:
        cache = FeatureCache(tmp_path / "cache")
        rewriter = QueryRewriter(f"{server.url}::qwen", ["Zucchini", "Sour-Cream", "Milk"], cache)
        assert rewriter.rewrite("  courgette ") == "Zucchini"
        sent = server.requests[0]
        assert sent["messages"][-1] == {"role": "user", "content": "courgette"} and sent["temperature"] == 0.0
        assert "Milk, Sour Cream, Zucchini" in sent["messages"][0]["content"]  # the vocabulary, nothing else
        again = QueryRewriter(f"{server.url}::qwen", ["Zucchini", "Sour-Cream", "Milk"], cache)
        assert again.rewrite("courgette") == "Zucchini" and len(server.requests) == 1  # cached across instances
        other = QueryRewriter(f"{server.url}::qwen", ["Zucchini"], cache)  # another vocabulary: asked again
        assert other.rewrite("courgette") == "Zucchini" and len(server.requests) == 2
        assert QueryRewriter(f"{server.url}::qwen", [], cache).rewrite("zucchini") == ""  # nothing to add
    finally:
        server.close()


@pytest.mark.slow
def test_the_offline_model_rewrites_in_process(tmp_path):
    require(importable("llama_cpp"), "llama-cpp-python", "`make test-setup` builds it")
    rewriter = QueryRewriter("qwen2.5-0.5b", ["Milk", "Yoghurt", "Juice"], FeatureCache(tmp_path / "cache"))
    answer = rewriter.rewrite("mjölk")
    assert answer and len(answer.split()) <= 6 and answer.lower() != "mjölk"
