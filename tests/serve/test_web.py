"""The search web page, driven end to end in headless Chromium (Debian's chromium + Playwright)."""
import pytest

from prodlens.serve import create_app
from tests.helpers import serving


@pytest.fixture(scope="module")
def server(service):
    with serving(create_app(service.config, service)) as url:
        yield url


@pytest.mark.slow
def test_drop_a_photo_and_a_clip_see_products_then_more_like_this(server, browser, indexed, tmp_path):
    catalog, _, _ = indexed
    page = browser.new_page()
    page.goto(server + "/")
    page.wait_for_selector("#status.ok", timeout=30_000)
    assert "6 products" in page.text_content("#status")

    target = catalog.by_domain("page")[4]
    page.set_input_files("#file", str(catalog.path(target.images[0])))  # choosing a file searches at once
    page.wait_for_selector(".result", timeout=30_000)
    cards = page.query_selector_all(".result")
    assert len(cards) == 6 and cards[0].get_attribute("data-product-id") == target.product_id
    message = page.text_content("#message")
    assert "results for the image" in message
    brand = catalog.products[target.product_id].title.split()[0].upper()
    assert "read: “" in message and brand in message  # what was read on the pack is shown
    # thumbnails load (their URLs come from the API)
    style = page.eval_on_selector(".result .thumb", "el => el.style.backgroundImage")
    assert "/thumbnails/" in style
    page.screenshot(path=str(tmp_path / "results.png"))

    # only product pages, top 5, for a live clip
    page.uncheck("input[value=video]")
    page.uncheck("input[value=live]")
    page.select_option("#k", "5")
    clip = catalog.by_domain("live")[1]
    page.set_input_files("#file", str(catalog.path(clip.video)))
    page.wait_for_function("document.querySelector('#message').textContent.includes('video')", timeout=30_000)
    domains = [c.text_content() for c in page.query_selector_all(".result .badge")]
    assert domains == ["page"] * 5

    # clicking a result searches for more like it
    first = page.query_selector(".result")
    first_title = first.query_selector(".product").text_content()
    first.click()
    page.wait_for_function("document.querySelector('#message').textContent.includes('products like')",
                           timeout=30_000)
    message = page.text_content("#message")  # the sample by its product's title, and a time that is not "0 ms"
    assert f"products like “{first_title}” (a page sample)" in message and " 0 ms" not in message

    # no domain ticked: said at once, not every domain's results
    page.uncheck("input[value=page]")
    page.fill("#text", "juice")
    page.click("#search")
    page.wait_for_selector("#message.error", timeout=30_000)
    assert "at least one" in page.text_content("#message")
    page.check("input[value=page]")
    page.fill("#text", "")

    # a bad upload shows the server's message, not a blank page
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image " * 20)
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#message.error", timeout=30_000)
    assert "neither an image nor a video" in page.text_content("#message")
    assert page.query_selector_all(".result") == []
    page.close()


@pytest.mark.slow
def test_the_page_offers_only_the_indexed_domains_and_shows_titles_as_text(indexed, browser, tmp_path):
    """A pages-only index: no video or live boxes; a title carrying HTML entities shows the characters, and a
    title with markup stays text."""
    import shutil

    from prodlens.embed import Embeddings
    from prodlens.index import IndexInfo, ProductIndex
    from prodlens.serve import SearchService, ServeConfig

    _, index_dir, cache_dir = indexed
    shutil.copytree(index_dir, tmp_path / "index")
    index = ProductIndex.open(tmp_path / "index")
    index.remove([it.sample_id for it in index.items.values() if it.domain != "page"])
    page_item = next(iter(index.items.values()))
    vector = index.vector_of(page_item.sample_id)
    title = 'Rose &quot;Deluxe&quot; <b>Shampoo</b>'
    index.add(Embeddings(["page/ROSE/api"], ["ROSE"], ["page"], [None], vector[None], {"model_id": index.model_id}),
              IndexInfo(titles={"page/ROSE/api": title}))
    index.save()
    service = SearchService(ServeConfig(str(tmp_path / "index"), cache_dir=str(cache_dir)))
    with serving(create_app(service.config, service)) as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#status.ok", timeout=30_000)
        assert page.is_visible("label[data-domain=page]")
        assert not page.is_visible("label[data-domain=video]") and not page.is_visible("label[data-domain=live]")
        page.fill("#text", "rose deluxe shampoo")
        page.click("#search")
        page.wait_for_selector(".result", timeout=30_000)
        titles = [c.text_content() for c in page.query_selector_all(".result .product")]
        assert 'Rose "Deluxe" <b>Shampoo</b>' in titles  # entities decoded, markup shown as text, never parsed
        assert page.query_selector(".result .product b") is None
        assert "results for the text" in page.text_content("#message")
        page.close()
