"""GET /docs and every asset it names, over HTTP through the local stack's Lambda runtime
emulator: each with its type and caching, its bytes intact (the icon travels base64-encoded) and
named by their hash; the docs page's policy on its answers; any other name 404. The page in a
real browser: tests/test_docs_browser.py. And the order the page shows the document in."""

import hashlib
import re

import yaml

from conftest import DOCS_PAGE_POLICY, REPO, assert_problem

DOCUMENT = yaml.safe_load((REPO / "openapi.yaml").read_text())
# The order a newcomer needs them in: the account first, then the platform, then the rest.
TAG_ORDER = ["auth", "jobs", "devices", "ledger", "governance", "keys", "admin", "meta"]

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


def operation_ids(tag: str) -> list[str]:
    """The tag's operations in the document's order, which is the page's (openapi.json keeps it:
    shared/src/handlers/meta.rs)."""
    return [
        operation["operationId"]
        for item in DOCUMENT["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and tag in operation.get("tags", [])
    ]


def test_the_document_lists_what_a_newcomer_needs_first():
    assert [tag["name"] for tag in DOCUMENT["tags"]] == TAG_ORDER
    assert all(operation_ids(tag) for tag in TAG_ORDER), "every tag has operations"
    assert operation_ids("auth")[:4] == ["register", "login", "me", "refresh"]
    assert operation_ids("auth")[-1] == "logout"
    # The Authorize dialog lists the schemes in this order: the access token first.
    assert list(DOCUMENT["components"]["securitySchemes"]) == ["bearerAuth", "ApiKey"]
    [server] = DOCUMENT["servers"]
    assert server["url"] == "/"
    assert not re.search(r"\d+\.\d+\.\d+\.\d+|localhost|:\d{2,5}\b", server["description"]), server
