"""The HTTP API on real uploads: images, clips, text, sample ids; and every kind of bad request."""
import io
import threading

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from prodlens.index import ModelMismatch
from prodlens.serve import SearchService, ServeConfig, create_app


@pytest.fixture(scope="module")
def client(service):
    with TestClient(create_app(service.config, service)) as c:
        yield c


def jpeg_bytes(path, scale=0.8, quality=80):
    img = Image.open(path).convert("RGB")
    img = img.resize((int(img.width * scale), int(img.height * scale)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def test_a_photo_of_a_product_page_finds_its_product(client, indexed):
    catalog, _, _ = indexed
    page = catalog.by_domain("page")[2]
    data = jpeg_bytes(catalog.path(page.images[0]))  # re-encoded and resized: not the indexed bytes
    r = client.post("/search", files={"file": ("photo.jpg", data, "image/jpeg")}, data={"k": "3"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"]["kind"] == "image" and len(body["results"]) == 3
    brand = catalog.products[page.product_id].title.split()[0].upper()
    assert brand in body["query"]["read"].upper()  # the text read on the pack is said, and is part of the query
    top = body["results"][0]
    assert top["product_id"] == page.product_id and top["score"] > body["results"][1]["score"] + 0.05
    assert set(top) >= {"product_id", "score", "domain", "sample_id", "title", "thumbnail"}
    assert len({h["product_id"] for h in body["results"]}) == 3  # one hit per product
    thumb = client.get(top["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size[0] <= 192


def test_a_clip_upload_is_sampled_and_filtered_to_pages(client, indexed):
    catalog, _, _ = indexed
    live = catalog.by_domain("live")[0]
    data = catalog.path(live.video).read_bytes()
    r = client.post("/search", files={"file": ("clip.bin", data, "application/octet-stream")},
                    data={"k": "6", "domain": "page"})
    assert r.status_code == 200, r.text
    body = r.json()
    # sampled like the index's own clips (it was built with 4 frames), not a server default
    assert body["query"]["kind"] == "video" and body["query"]["frames"] == 4
    assert [h["domain"] for h in body["results"]] == ["page"] * 6
    # the upload is sampled and embedded as the indexed clip was: among live clips it finds itself
    r = client.post("/search", files={"file": ("clip.bin", data, "application/octet-stream")},
                    data={"k": "3", "domain": "live", "per_product": "false", "query_domain": "live"})
    top = r.json()["results"][0]
    assert top["sample_id"] == live.sample_id and top["score"] > 0.98


def test_short_videos_find_their_product_page_first(client, indexed, service):
    catalog, _, _ = indexed
    first = 0
    for video in catalog.by_domain("video"):
        r = client.post("/search", files={"file": ("v.mp4", catalog.path(video.video).read_bytes(), "video/mp4")},
                        data={"k": "3", "domain": "page"})
        served = [(h["product_id"], h["score"]) for h in r.json()["results"]]
        # the service ranks exactly as the library does with the index's own model on the same clip
        vector = service.model.encode(videos=[catalog.path(video.video)], domain="video")[0]
        library = [(h.product_id, h.score) for h in service.index.search(vector, 3, domains=["page"])]
        assert [p for p, _ in served] == [p for p, _ in library]
        assert [s for _, s in served] == pytest.approx([s for _, s in library], abs=1e-5)
        first += served[0][0] == video.product_id
    assert first >= 3  # zero-shot, silent clips, 6 products: chance finds 1


def test_text_and_sample_id_queries(client, indexed):
    catalog, _, _ = indexed
    product = catalog.products[sorted(catalog.products)[1]]
    r = client.post("/search", data={"text": product.title, "k": "1", "domain": "page"})
    assert r.status_code == 200 and r.json()["results"][0]["product_id"] == product.product_id
    video = catalog.by_domain("video")[3]
    r = client.post("/search", data={"sample_id": video.sample_id, "k": "5", "per_product": "false"})
    hits = r.json()["results"]
    assert r.status_code == 200 and video.sample_id not in [h["sample_id"] for h in hits]
    r = client.post("/search", data={"sample_id": video.sample_id, "domain": "page,live", "k": "3"})
    assert {h["domain"] for h in r.json()["results"]} <= {"page", "live"}


def test_categories_list_the_index_and_filter_search(client, indexed):
    catalog, _, _ = indexed
    categories = client.get("/categories").json()["categories"]
    expected: dict[str, set] = {}
    for p in catalog.products.values():
        expected.setdefault(p.category, set()).add(p.product_id)
    assert categories == {c: len(ids) for c, ids in sorted(expected.items())}
    wanted = sorted(categories)[0]
    r = client.post("/search", data={"text": "a product", "k": "20", "per_product": "false", "category": wanted})
    hits = r.json()["results"]
    assert r.status_code == 200 and hits and {h["category"] for h in hits} == {wanted}
    assert {h["product_id"] for h in hits} == expected[wanted]


def test_health_stats_schema_and_page(client):
    assert client.get("/health").json()["status"] == "ok"
    stats = client.get("/stats").json()
    assert stats["items"] == 18 and stats["domains"] == {"page": 6, "video": 6, "live": 6} and stats["kind"] == "flat"
    assert stats["model"].startswith("zero-shot[")
    for text in ("apple", "banana juice", "oat milk"):
        assert client.post("/search", data={"text": text, "k": "1"}).status_code == 200
    assert client.post("/search", data={"text": "", "k": "1"}).status_code == 400  # refused: not counted
    assert client.get("/stats").json()["queries"] == stats["queries"] + 3
    schema = client.get("/openapi.json").json()
    assert "/search" in schema["paths"] and "/health" in schema["paths"]
    page = client.get("/")
    assert page.status_code == 200 and 'id="file"' in page.text and 'id="category"' in page.text


@pytest.mark.parametrize("form,files,status,message", [
    ({}, None, 400, "nothing to search with"),
    ({"text": "   "}, None, 400, "nothing to search with"),
    ({"text": "x", "k": "0"}, None, 422, "k must be"),
    ({"text": "x", "k": "500"}, None, 422, "k must be"),
    ({"text": "x", "k": "ten"}, None, 422, "int"),
    ({"text": "x" * 5000}, None, 413, "limit"),
    ({"text": "x", "domain": "shop"}, None, 422, "unknown domain"),
    ({"text": "x", "query_domain": "shop"}, None, 400, "query domain"),
    ({"sample_id": "no/such/sample"}, None, 404, "not in the index"),
    ({}, {"file": ("notes.txt", b"hello, this is not media at all" * 10, "text/plain")}, 415, "neither an image"),
    ({}, {"file": ("empty.jpg", b"", "image/jpeg")}, 400, "empty"),
])
def test_bad_requests_get_clear_4xx(client, form, files, status, message):
    r = client.post("/search", data=form, files=files)
    assert r.status_code == status, r.text
    assert message in r.text


def test_corrupt_and_oversized_uploads(client, indexed):
    catalog, _, _ = indexed
    good = catalog.path(catalog.by_domain("page")[0].images[0]).read_bytes()
    r = client.post("/search", files={"file": ("cut.jpg", good[: len(good) // 3], "image/jpeg")})
    assert r.status_code == 422 and "cut.jpg" in r.json()["detail"]
    clip = catalog.path(catalog.by_domain("video")[0].video).read_bytes()
    r = client.post("/search", files={"file": ("cut.mp4", clip[:2000], "video/mp4")})
    assert r.status_code in (415, 422) and "cut.mp4" in r.json()["detail"]
    big = b"\xff\xd8" + b"\0" * (3 * 1024 * 1024)  # over the 2 MB limit of this service
    r = client.post("/search", files={"file": ("huge.jpg", big, "image/jpeg")})
    assert r.status_code == 413


def test_thumbnails_cannot_escape_the_index(client):
    for name in ("../CURRENT", "..%2FCURRENT", "%2e%2e%2fCURRENT", "0123456789abcdef0123.jpg", "x.jpg"):
        assert client.get(f"/thumbnails/{name}").status_code == 404


def test_health_is_503_until_loaded(indexed):
    _, index_dir, cache_dir = indexed
    gate = threading.Event()

    def held_back(config, metrics):  # the real loader, started only once the test has seen the server loading
        gate.wait()
        return SearchService(config, metrics=metrics)

    app = create_app(ServeConfig(str(index_dir), cache_dir=str(cache_dir)), loader=held_back)
    with TestClient(app) as c:
        first = c.get("/health")
        assert first.status_code == 503 and first.json()["status"] == "loading"
        searching = c.post("/search", data={"text": "x"})
        assert searching.status_code == 503 and "loading" in searching.json()["detail"]
        gate.set()
        while not app.state.prodlens.ready.wait(timeout=1):  # readiness, however long loading takes here
            pass
        assert c.get("/health").status_code == 200
        assert c.post("/search", data={"text": "x"}).status_code == 200


def test_a_broken_index_reports_its_error_on_health(tmp_path):
    app = create_app(ServeConfig(str(tmp_path)))
    with TestClient(app) as c:
        while not app.state.prodlens.ready.wait(timeout=1):  # loading ends, in error
            pass
        r = c.get("/health")
        assert r.status_code == 503 and "not a prodlens index" in r.json()["error"]


def test_a_zero_shot_index_refuses_a_trained_checkpoint(indexed, tmp_path):
    _, index_dir, cache_dir = indexed
    with pytest.raises(ModelMismatch, match="zero-shot"):
        SearchService(ServeConfig(str(index_dir), checkpoint=str(tmp_path), cache_dir=str(cache_dir)))


def test_recommend_without_a_recommender_is_404(client):
    r = client.get("/recommend", params={"user": "u1"})
    assert r.status_code == 404 and "--rec" in r.json()["detail"]


def test_asr_on_an_uploaded_clip_works_offline_with_the_defaults(indexed, tmp_path):
    """`serve --asr` with the configuration's own default ASR model (the offline Whisper tiny.en): the clip's speech
    becomes part of the query, and the spoken product name pulls its page up."""
    from tests.helpers import RAINBOW, speak, write_video

    catalog, index_dir, cache_dir = indexed
    product = catalog.products[sorted(catalog.products)[4]]
    audio, rate = speak(f"hello everyone, today I am showing you the {product.title}. I really love it.",
                        tmp_path / "pitch.wav")
    clip = write_video(tmp_path / "clip.mp4", RAINBOW * 3, audio=audio, audio_rate=rate).read_bytes()
    service = SearchService(ServeConfig(str(index_dir), cache_dir=str(cache_dir), asr=True))
    with TestClient(create_app(service.config, service)) as c:
        r = c.post("/search", files={"file": ("clip.mp4", clip, "video/mp4")}, data={"k": "3", "domain": "page"})
    assert r.status_code == 200, r.text
    body = r.json()
    spoken = body["query"].get("speech", "")
    assert product.title.split()[-1].lower() in spoken.lower(), body["query"]
    assert body["results"][0]["product_id"] == product.product_id


def test_no_domain_chosen_is_an_error_not_every_domain(client):
    r = client.post("/search", data={"text": "juice", "domain": ""})
    assert r.status_code == 422 and "no domain chosen" in r.json()["detail"]
    assert client.post("/search", data={"text": "juice"}).status_code == 200  # the field absent: every domain


def test_an_unknown_category_is_named_with_the_known_ones(client, service):
    r = client.post("/search", data={"text": "juice", "category": "Spaceships"})
    known = next(iter(service.index.category_products()))
    assert r.status_code == 422
    assert "unknown category 'Spaceships'" in r.json()["detail"] and known in r.json()["detail"]


def test_a_sample_query_says_what_it_was_and_how_long_it_took(client, indexed):
    catalog, _, _ = indexed
    video = catalog.by_domain("video")[0]
    body = client.post("/search", data={"sample_id": video.sample_id, "k": "3"}).json()
    title = video.title or catalog.products[video.product_id].title  # as indexed: the clip's own caption first
    assert body["query"] == {"kind": "sample", "sample_id": video.sample_id, "product_id": video.product_id,
                             "domain": "video", "title": title, "retrieval": "vector",
                             "calibrated": False}  # relevance fitted for the default model, not this 4-frame one
    assert body["took_ms"] > 0  # not rounded away to 0


def test_text_queries_are_hybrid_and_can_be_vector_only(client, indexed, service):
    catalog, _, _ = indexed
    product = catalog.products[sorted(catalog.products)[2]]
    hybrid = client.post("/search", data={"text": product.title, "k": "3"}).json()
    assert hybrid["query"]["retrieval"] == "hybrid" and hybrid["results"][0]["product_id"] == product.product_id
    vector_only = SearchService(ServeConfig(service.config.index_dir, cache_dir=service.config.cache_dir,
                                            retrieval="vector")).search(text=product.title, k=3)
    assert vector_only.query["retrieval"] == "vector"
    library = service.index.search(service.model.embed_query([], product.title, "page"), 3)
    assert [h.sample_id for h in vector_only.hits] == [h.sample_id for h in library]
