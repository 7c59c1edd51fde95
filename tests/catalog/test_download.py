"""`catalog download rope` against a real HTTP server on loopback: real JPEGs, 404s, slow and truncated answers."""
import io
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image

from prodlens.catalog.download import download_images, image_problem, rope_image_names
from tests.helpers import write_spec_fixture


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (seed * 40 % 256, 80, 160)).save(buf, format="JPEG")
    return buf.getvalue()


class ImageServer:
    """Serves /img/<name>: a JPEG for known names, 404 for others; `slow` names do not answer their first request
    until the client has given up on it and asked again (so the client's timeout, not a guessed delay, decides),
    `flaky` names send half their body on the first request, `cut` names always do, `html` names send a web page."""

    def __init__(self, names, slow=(), flaky=(), cut=(), html=()):
        self.images = {n: jpeg(i) for i, n in enumerate(names)}
        self.requests: dict[str, int] = {}
        self.retried = {n: threading.Event() for n in slow}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                seen = server.requests[name] = server.requests.get(name, 0) + 1
                if name in html:
                    return self._send(b"<html><body>login required</body></html>")
                if name not in server.images:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = server.images[name]
                if name in slow and seen == 1:
                    server.retried[name].wait(600)  # answered only after the retry came in
                elif name in slow:
                    server.retried[name].set()
                if name in cut or (name in flaky and seen == 1):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self._send(body)

            def _send(self, body):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/img/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def test_download_resumes_retries_and_reports(tmp_path):
    good = [f"g{i}.jpg" for i in range(20)]
    slow, flaky, cut, html = "g1.jpg", "g2.jpg", "g3.jpg", "page.jpg"
    server = ImageServer(good, slow={slow}, flaky={flaky}, cut={cut}, html={html})
    media = tmp_path / "media"
    (media / ".partial").mkdir(parents=True)
    (media / ".partial" / "g5.jpg.123").write_bytes(b"half of a killed download")
    try:
        names = good + ["missing.jpg", html, "../escape.jpg"]
        report = download_images(names, media, server.url, workers=4, retries=2, timeout=2.0, backoff=0.05,
                                 progress=False)
        failed = dict(report.failures)
        assert report.downloaded == 19 and report.failed == 4, failed
        assert failed["missing.jpg"] == "HTTP 404" and server.requests["missing.jpg"] == 1  # 404 is not retried
        assert failed[html].startswith("not an image") and server.requests[html] == 1
        assert failed["../escape.jpg"] == "not a bare file name"
        assert "truncated" in failed[cut] and server.requests[cut] == 3  # retried, then given up
        assert server.requests[slow] == 2 and server.requests[flaky] == 2  # a timeout and a cut body, then fine
        for name in good:
            if name != cut:
                assert (media / name).read_bytes() == server.images[name]
        assert not (media / cut).exists() and not (media / ".partial").exists()  # no partial file is ever final
        tsv = report.report_path.read_text().splitlines()
        assert tsv[0] == "name\treason" and len(tsv) == 5 and any(line.startswith("missing.jpg\tHTTP 404") for line in tsv)

        again = download_images(names, media, server.url, workers=4, retries=0, timeout=30.0, progress=False)
        assert again.downloaded == 0 and again.skipped == 19  # a rerun fetches only what is missing
    finally:
        server.close()


def test_rate_limit_spaces_requests():
    server = ImageServer([f"r{i}.jpg" for i in range(11)])
    try:
        start = time.monotonic()
        report = download_images([f"r{i}.jpg" for i in range(11)], Path(os.environ.get("TMPDIR", "/tmp")) /
                                 f"rate-{os.getpid()}", server.url, workers=8, rate=20.0, progress=False)
        elapsed = time.monotonic() - start
    finally:
        server.close()
    assert report.downloaded == 11
    assert elapsed >= 0.5  # 11 requests at 20/s need 10 intervals of 50 ms, however many workers ask


def test_image_check():
    data = jpeg(1)
    assert image_problem(data) is None
    assert "truncated JPEG" in image_problem(data[: len(data) // 2])
    assert image_problem(b"<html>").startswith("not an image")


def test_download_command_on_a_rope_catalogue(tmp_path):
    root = write_spec_fixture(tmp_path / "rope")
    names = list(rope_image_names(root))
    assert len(names) == len(set(names)) == 3 + 6 + 5 + 1  # pages + video frames + live frames + the test page
    server = ImageServer(names[:-2])  # the last two are missing upstream
    try:
        proc = subprocess.run([str(Path(sys.executable).parent / "prodlens"), "catalog", "download", "rope",
                               "--root", str(root), "--media-dir", str(tmp_path / "media"), "--url-prefix",
                               server.url, "--workers", "4", "--retries", "1"],
                              capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"})
    finally:
        server.close()
    assert proc.returncode == 1, proc.stderr  # some images failed: the command says so in its exit code
    assert "downloaded 13" in proc.stdout and "failed 2" in proc.stdout
    assert (tmp_path / "media" / "download-failures.tsv").read_text().count("HTTP 404") == 2
