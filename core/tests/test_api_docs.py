"""The API docs page loads Swagger UI from the app itself (drf-spectacular-sidecar), never from a CDN."""

import re

import pytest

pytestmark = pytest.mark.django_db


def test_swagger_ui_is_served_from_the_app(client, live_server):
    import urllib.request

    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assets = [s for s in sources if s.endswith((".js", ".css", ".png"))]
    assert assets, html
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))], sources
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/swagger-ui-dist/"), asset
        # Each file is really served (live_server serves static files like runserver does).
        with urllib.request.urlopen(live_server.url + asset, timeout=10) as response:
            assert response.status == 200 and len(response.read()) > 100
