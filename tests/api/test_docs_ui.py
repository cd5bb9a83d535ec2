"""The OpenAPI schema and the interactive docs, served by the project with no internet."""

from __future__ import annotations

import os
import re
from urllib.parse import urlparse

import pytest
from rest_framework.test import APIClient

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.django_db
def test_the_schema_is_served_and_lists_every_endpoint():
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths) == {
        "/api/v1/conversations",
        "/api/v1/conversations/{conversation_id}",
        "/api/v1/conversations/{conversation_id}/handoff",
        "/api/v1/conversations/{conversation_id}/handback",
        "/api/v1/conversations/{conversation_id}/rating",
        "/api/v1/conversations/{conversation_id}/messages",
        "/api/v1/conversations/{conversation_id}/turns",
        "/api/v1/conversations/{conversation_id}/turns/{turn_id}",
        "/api/v1/conversations/{conversation_id}/turns/{turn_id}/retry",
        "/api/v1/conversations/{conversation_id}/turns/{turn_id}/cancel",
    }
    schemes = response.json()["components"]["securitySchemes"]
    assert set(schemes) == {"apiKey", "visitorToken", "staffSession"}


@pytest.mark.django_db
def test_swagger_ui_and_all_its_assets_come_from_the_project():
    client = APIClient()
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    urls += re.findall(r"""url:\s*["']([^"']+)["']""", html)
    assets = [u for u in urls if u.endswith((".js", ".css", ".png"))]
    assert len(assets) >= 4, urls
    for url in urls + re.findall(r"https?://[^\s\"'<>)]+", html):
        assert not urlparse(url).netloc, f"external URL in the docs page: {url}"
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert int(asset.headers["Content-Length"]) > 500, url
    assert client.get("/api/docs/assets/../../settings.py").status_code == 404


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_the_operations_offline_in_a_browser(offline_server, default_agent):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (CI installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    external: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page()

        def only_local(route):
            if urlparse(route.request.url).hostname != "127.0.0.1":
                external.append(route.request.url)
                return route.abort()
            return route.continue_()

        page.route("**/*", only_local)
        page.goto(f"{offline_server.url}/api/docs/")
        page.get_by_text("Post a customer message").first.wait_for(timeout=20_000)
        assert page.locator(".opblock").count() >= 12
        browser.close()
    assert external == []
