"""The OpenAI-compatible HTTP backend against servers on loopback: a real model behind `prodlens llm-serve`, and
endpoints that are down, slow, or answer garbage."""
import json
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from prodlens.embed import FeatureCache
from prodlens.errors import RecordError
from prodlens.text import HTTPChatBackend, Summarizer
from tests.helpers import PITCH, free_port, importable, require, wait_until_serving


@pytest.mark.slow
def test_real_model_behind_llm_serve(tmp_path):
    port = free_port()
    log = tmp_path / "server.log"  # a file, not a pipe: a pipe nobody reads fills up and blocks the server
    server = subprocess.Popen([str(Path(sys.executable).parent / "prodlens"), "llm-serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
                              env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/v1/models", server, log)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=30) as r:
            model = json.loads(r.read())["data"][0]["id"]
        s = Summarizer(f"http://127.0.0.1:{port}/v1::{model}", FeatureCache(tmp_path / "c"))
        items = [("a", PITCH, ""), ("b", "so this one is the bean bros dark roast coffee one kilo bag", "")]
        results, bad = s.summarize_many(items, concurrency=2, progress=False)
        assert not len(bad)
        assert "shampoo" in results["a"].facts.product_name.lower()
        assert "coffee" in (results["b"].facts.product_name + results["b"].facts.category).lower()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_llama_cpp_python_openai_server(tmp_path):
    """llama-cpp-python's own OpenAI-compatible server with the Gemma GGUF: it refuses OpenAI's json_schema
    response format, so the backend falls back to its json_object + schema dialect and gets valid facts."""
    require(importable("llama_cpp.server.app"), "llama-cpp-python[server]", "`make test` installs it")
    from prodlens.text.llm import gemma3_270m_path

    port = free_port()
    log = tmp_path / "server.log"  # llama.cpp logs a lot: a pipe would fill up and block it
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gemma3_270m_path()),
                               "--port", str(port), "--n_ctx", "4096", "--model_alias", "gemma"],
                              stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/v1/models", server, log)
        s = Summarizer(f"http://127.0.0.1:{port}/v1::gemma", FeatureCache(tmp_path / "c"))
        results, bad = s.summarize_many([("a", PITCH, ""), ("b", PITCH + " it comes in a green bottle", "")],
                                        concurrency=2, progress=False)
        assert not len(bad) and s.backend.response_format == "json_object"
        # a 270M base model mixes up fields (the name lands in "brand" now and then); the facts are still grounded
        assert all("shampoo" in (r.facts.product_name + " " + r.facts.brand).lower() for r in results.values())
    finally:
        server.terminate()
        server.wait(timeout=30)


class _Server:
    def __init__(self, handler):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def _handler(reply: bytes, delay: float = 0.0, status: int = 200):
    class H(BaseHTTPRequestHandler):
        calls = 0

        def log_message(self, *a):
            pass

        def do_POST(self):
            H.calls += 1
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
    return H


def _chat(text: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()


def _answering(answer):
    """A chat endpoint whose reply is answer(request body); it keeps every request it was sent."""
    class H(BaseHTTPRequestHandler):
        requests: list[dict] = []

        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            H.requests.append(body)
            reply = _chat(answer(body))
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
    return H


FACTS = {"product_name": "organic shampoo", "brand": "lumo", "category": "", "attributes": ["green apple"],
         "summary": "Lumo organic shampoo."}


def test_a_retry_says_what_was_wrong_and_is_not_the_same_request(tmp_path):
    """The model adds a key the schema forbids until it is told so. Re-sending the first request to a greedy
    decoder would return the same invalid answer, so the retry must carry the reason and sample."""
    def answer(body):
        told = "price: Extra inputs are not permitted" in body["messages"][-1]["content"]
        return json.dumps(FACTS if told else {**FACTS, "price": "9.99"})

    handler = _answering(answer)
    server = _Server(handler)
    try:
        result = Summarizer(f"{server.url}::m", FeatureCache(tmp_path / "c"), retries=2).summarize(PITCH)
    finally:
        server.close()
    first, second = handler.requests
    assert result.attempts == 2 and result.facts.brand == "lumo"
    assert first["temperature"] == 0 and second["temperature"] > 0 and first["messages"] != second["messages"]


def test_a_model_names_only_what_the_evidence_supports_and_nothing_unsaid_is_kept(tmp_path):
    """A model (here a stub server) that answers with an attacker's product: the product name and brand it wrote are
    not among the evidence's candidates, so the evidence's winner replaces them; the rest was never said."""
    payload = {"product_name": "rolex gold watch", "brand": "rolex", "category": "watches",
               "attributes": ["bitcoin", "green apple"], "summary": "Buy a Rolex gold watch with bitcoin."}
    requests = []
    server = _Server(_answering(lambda body: requests.append(body) or json.dumps(payload)))
    try:
        result = Summarizer(f"{server.url}::m", FeatureCache(tmp_path / "c")).summarize(PITCH)
    finally:
        server.close()
    facts = result.facts
    assert (facts.product_name, facts.brand, facts.category, facts.summary) == ("lumo organic shampoo", "lumo", "",
                                                                                "")
    assert facts.attributes == ["green apple"]  # the one value that was said
    assert "category='watches'" in result.dropped and "rolex" not in facts.model_dump_json().lower()
    schema = requests[0]["response_format"]["json_schema"]["schema"]["properties"]
    assert "lumo organic shampoo" in schema["product_name"]["enum"]  # the server was asked to choose, not write
    assert "Candidates:" in requests[0]["messages"][-1]["content"]


def test_endpoint_down_is_retried_then_reported():
    backend = HTTPChatBackend(f"http://127.0.0.1:{free_port()}/v1", "m", retries=2, backoff=0.01, timeout=1)
    s = Summarizer("http://unused::m")
    s._backend = backend
    with pytest.raises(RecordError, match="unreachable.*gave up after 3 attempts"):
        s.summarize(PITCH, record="live/p1/l0")


def test_garbage_output_is_retried_then_reported_and_never_cached(tmp_path):
    handler = _handler(_chat("I am a llama and I do not do JSON"))
    server = _Server(handler)
    try:
        cache = FeatureCache(tmp_path / "c")
        s = Summarizer(f"{server.url}::m", cache, retries=2)
        with pytest.raises(RecordError, match="failed validation.*attempt 3"):
            s.summarize(PITCH, record="video/p2/v1")
        assert handler.calls == 3 and cache.count() == 0
    finally:
        server.close()


def test_slow_or_failing_endpoints(tmp_path):
    slow = _Server(_handler(_chat("{}"), delay=2.0))
    broken = _Server(_handler(b"oops", status=503))
    try:
        with pytest.raises(Exception, match="unreachable|timed out"):
            HTTPChatBackend(slow.url, "m", retries=0, timeout=0.5).complete("", PITCH)
        with pytest.raises(Exception, match="HTTP 503.*gave up after 2"):
            HTTPChatBackend(broken.url, "m", retries=1, backoff=0.01).complete("", PITCH)
        ok = _Server(_handler(_chat('Sure! {"product_name": "organic shampoo", "brand": "lumo", "price": 3}')))
        s = Summarizer(f"{ok.url}::m", FeatureCache(tmp_path / "c"), retries=0)
        with pytest.raises(RecordError, match="failed validation"):  # an extra key is not a valid answer
            s.summarize(PITCH)
        ok.close()
    finally:
        slow.close()
        broken.close()


def test_a_catalogue_is_summarised_with_requests_in_flight_together(tmp_path):
    """summarize_many keeps `concurrency` requests open at once (a server with parallel slots decodes them
    together); the stub answers only once it holds 4 requests, so a one-at-a-time loop would never finish."""
    gate, in_flight, most = threading.Barrier(4, timeout=60), [0], [0]
    lock = threading.Lock()

    def answer(body):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            gate.wait()
        except threading.BrokenBarrierError:
            pass
        with lock:
            in_flight[0] -= 1
        return json.dumps(FACTS)

    server = _Server(_answering(answer))
    items = [(f"live/{i}", PITCH, "") for i in range(8)]
    try:
        out, bad = Summarizer(f"{server.url}::m", FeatureCache(tmp_path / "c")).summarize_many(
            items, concurrency=4, progress=False)
    finally:
        server.close()
    assert not len(bad) and len(out) == 8 and most[0] == 4
    assert all(r.facts.product_name == "organic shampoo" for r in out.values())
