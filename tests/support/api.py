"""Reading the API error envelope ({"type", "errors": [{"code", "detail", "attr"}]}) in tests."""


def api_errors(response):
    """The error envelope of a 4xx response as {attr: [detail, ...]} (attr None for non-field errors)."""
    body = response.json()
    assert set(body) == {"type", "errors"}, body
    out = {}
    for error in body["errors"]:
        out.setdefault(error["attr"], []).append(error["detail"])
    return out


def api_error_codes(response):
    """{attr: [code, ...]} of a 4xx response's error envelope."""
    out = {}
    for error in response.json()["errors"]:
        out.setdefault(error["attr"], []).append(error["code"])
    return out


def api_error_fields(response):
    """The top-level fields a 4xx response's errors are about ("events.0" -> "events")."""
    return {e["attr"].split(".")[0] for e in response.json()["errors"] if e["attr"] is not None}
