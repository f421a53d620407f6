"""The docs page in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, which `make browser` installs where missing) uses Swagger UI at /docs against
the local stack as a person would: it registers and logs in through "Try it out", authorizes
with the access token the login answered, and calls GET /api/auth/me. No console error, and no
request to anywhere but 127.0.0.1. The page shows the tags and the account's operations in the
document's deliberate order, the bearer token first in "Authorize", and a server label without a
fixed address. The last screen is saved as tests/output/docs-browser.png.

Without Chromium or its driver the test skips, with the reason in one line; under CI=true that
is a failure."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import REPO, STRONG_PASSWORD, unique_username
from test_docs import TAG_ORDER, operation_ids

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = REPO / "tests" / "output" / "docs-browser.png"
# The stack starts a function on its first request, which on a loaded machine takes a while.
WAIT_SECONDS = 120


@pytest.fixture(scope="module")
def browser():
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        reason = f"docs browser test: {' and '.join(missing)} missing (`make browser` installs them as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}, and CI=true requires them", pytrace=False)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    # The sandbox needs privileges a container lacks.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,2000",
                 "--no-first-run", "--disable-component-update", "--disable-sync"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class DocsPage:
    """Swagger UI's own controls, found as a person finds them: by operation, button and panel."""

    def __init__(self, driver):
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.wait = WebDriverWait(driver, WAIT_SECONDS)

    def find(self, css: str, within=None):
        from selenium.webdriver.common.by import By

        root = within or self.driver
        self.wait.until(lambda _: root.find_elements(By.CSS_SELECTOR, css))
        return root.find_element(By.CSS_SELECTOR, css)

    def operation(self, tag: str, operation_id: str):
        """The operation's block, expanded, with "Try it out" pressed."""
        block = self.find(f"#operations-{tag}-{operation_id}")
        self.find(".opblock-summary-control", block).click()
        self.find(".try-out__btn", block).click()
        return block

    def set_body(self, block, body: dict) -> None:
        from selenium.webdriver.common.keys import Keys

        editor = self.find("textarea.body-param__text", block)
        editor.send_keys(Keys.CONTROL, "a")
        editor.send_keys(Keys.DELETE)
        editor.send_keys(json.dumps(body))

    def execute(self, block) -> tuple[str, str]:
        """Presses Execute; the status and body the response panel shows."""
        self.find("button.execute", block).click()
        status = self.find(".live-responses-table .response .response-col_status", block)
        self.wait.until(lambda _: status.text.strip())
        body = self.find(".live-responses-table .response-col_description pre", block)
        return status.text.strip(), body.text

    def all(self, css: str, within=None) -> list:
        from selenium.webdriver.common.by import By

        self.find(css, within)
        return (within or self.driver).find_elements(By.CSS_SELECTOR, css)

    def authorize_bearer(self, token: str) -> None:
        """Enters the token in the "Authorize" dialog's bearer scheme, the first it offers; the
        second is the API key scheme (X-API-Key)."""
        self.find(".auth-wrapper button.authorize").click()
        dialog = self.find(".dialog-ux .modal-ux")
        schemes = [form.find_element("css selector", "h4").text.split()[0] for form in self.all("form", dialog)]
        assert schemes == ["bearerAuth", "ApiKey"], schemes
        assert "X-API-Key" in self.find("#api_key_value", dialog).find_element("xpath", "ancestor::form").text
        bearer = self.find("#auth-bearer-value", dialog).find_element("xpath", "ancestor::form")
        self.find("#auth-bearer-value", bearer).send_keys(token)
        self.find("button.authorize", bearer).click()
        self.wait.until(lambda _: "Authorized" in bearer.text)
        self.find("button.btn-done", bearer).click()


def test_register_log_in_authorize_and_call_me_through_the_docs_page(api, browser):
    page = DocsPage(browser)
    browser.get(f"{api.url}/docs")
    assert "Fog Compute API" in page.find(".information-container .title").text
    tags = [element.get_attribute("data-tag") for element in page.all(".opblock-tag[data-tag]")]
    assert tags == TAG_ORDER, tags
    shown = [element.get_attribute("id") for element in page.all("[id^='operations-auth-']")]
    assert shown == [f"operations-auth-{operation}" for operation in operation_ids("auth")], shown
    server = page.find(".servers select option").text
    assert server.startswith("/ - The API that served this page"), server
    assert "127.0.0.1" not in server and "3000" not in server, server
    username = unique_username()

    register = page.operation("auth", "register")
    page.set_body(register, {"username": username, "email": f"{username}@example.com", "password": STRONG_PASSWORD})
    status, body = page.execute(register)
    assert status == "201", body
    # "Try it out" calls the API that served the page.
    assert page.find(".request-url pre", register).text == f"{api.url}/api/auth/register"

    login = page.operation("auth", "login")
    page.set_body(login, {"username": username, "password": STRONG_PASSWORD})
    status, body = page.execute(login)
    assert status == "200", body
    token = json.loads(body)["access_token"]

    page.authorize_bearer(token)
    me = page.operation("auth", "me")
    status, body = page.execute(me)
    assert status == "200", body
    assert json.loads(body)["username"] == username
    assert page.find(".curl-command", me).text.count(f"Authorization: Bearer {token}") == 1

    browser.execute_script("arguments[0].scrollIntoView()", me)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))

    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    requested = [
        event["params"]["request"]["url"]
        for event in (json.loads(entry["message"])["message"] for entry in browser.get_log("performance"))
        if event["method"] == "Network.requestWillBeSent"
    ]
    paths = {urlsplit(url).path for url in requested}
    assert {"/docs", "/openapi.json", "/api/auth/register", "/api/auth/login", "/api/auth/me"} <= paths, paths
    elsewhere = [url for url in requested if urlsplit(url).scheme != "data" and urlsplit(url).hostname != "127.0.0.1"]
    assert not elsewhere, elsewhere
