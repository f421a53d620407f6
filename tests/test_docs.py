"""GET /docs and every asset it names, over HTTP through the local stack's Lambda runtime
emulator: each with its type and caching, its bytes intact (the icon travels base64-encoded) and
named by their hash; the docs page's policy on its answers; any other name 404. The page in a
real browser: tests/test_docs_browser.py."""

import hashlib
import re

from conftest import DOCS_PAGE_POLICY, assert_problem

ASSET_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8", "png": "image/png"}


def test_the_page_and_every_asset_it_names_are_served(api):
    page = api.get("/docs")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-cache"
    assert page.headers["Content-Security-Policy"] == DOCS_PAGE_POLICY
    assert "X-RateLimit-Limit" not in page.headers, "not rate limited"
    assets = re.findall(r'(?:src|href)="docs/([^"]+)"', page.text)
    assert sorted(name.split(".")[0] for name in assets) == [
        "favicon-32x32", "index", "swagger-init", "swagger-ui", "swagger-ui-bundle",
    ]
    for name in assets:
        response = api.get(f"/docs/{name}")
        assert response.status_code == 200, name
        _, digest, extension = name.rsplit(".", 2)
        assert response.headers["Content-Type"] == ASSET_TYPES[extension], name
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable", name
        assert response.headers["Content-Security-Policy"] == DOCS_PAGE_POLICY, name
        assert hashlib.sha256(response.content).hexdigest()[:16] == digest, name


def test_a_name_the_page_does_not_use_is_a_404_never_cached(api):
    for name in ["swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.0000000000000000.png"]:
        response = api.get(f"/docs/{name}")
        assert assert_problem(response, 404)["detail"] == "The docs page has no such file"
        assert response.headers["Cache-Control"] == "no-store"
