"""The error contract the fuzz suite relies on: documented 4xx answers, and JSON for unmatched URLs."""

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings

from core.exceptions import document_error_responses

HOOKS = ["drf_spectacular.hooks.postprocess_schema_enums", "core.exceptions.document_error_responses"]


def generated(hooks=HOOKS):
    with patched_settings({"POSTPROCESSING_HOOKS": hooks}):
        return SchemaGenerator().get_schema(request=None, public=True)


def test_error_responses_are_documented_by_what_an_operation_can_fail_on(db):
    paths = generated()["paths"]
    assert set(paths["/api/v1/tasks/{id}/"]["patch"]["responses"]) >= {"200", "400", "401", "403", "404", "409"}
    # 404: bad page; 429: throttled (every operation)
    assert set(paths["/api/v1/tasks/"]["get"]["responses"]) == {"200", "400", "401", "403", "404", "429"}
    assert set(paths["/api/v1/me/"]["get"]["responses"]) == {"200", "401", "403", "429"}
    # Every 201 states its Location header.
    created = paths["/api/v1/tasks/"]["post"]["responses"]["201"]
    assert created["headers"]["Location"]["required"] is True
    # An operation's own documented errors win over the generic ones.
    download = paths["/api/v1/exports/{id}/download/"]["get"]["responses"]
    assert set(download) >= {"404", "409", "410"} and "Error" not in str(download["410"])


def test_hook_is_idempotent_and_adds_the_error_component(db):
    schema = generated(["drf_spectacular.hooks.postprocess_schema_enums"])
    once = document_error_responses(schema, None, None, True)
    assert set(once["components"]["schemas"]["Error"]["properties"]) == {"type", "errors"}
    assert set(once["components"]["schemas"]["ErrorItem"]["properties"]) == {"code", "detail", "attr"}
    assert document_error_responses(once, None, None, True) == once


def test_unmatched_api_url_answers_json_404(client, db):
    r = client.get("/api/v1/tasks/-1/comments/")
    assert r.status_code == 404
    assert r.json() == {"type": "client_error", "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}]}


def test_unmatched_non_api_url_keeps_the_html_page(client, db):
    r = client.get("/no-such-page/")
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")


def test_served_schema_documents_errors(client, db):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    assert "Error" in schema["components"]["schemas"]
    assert "404" in schema["paths"]["/api/v1/tasks/{id}/"]["get"]["responses"]


def test_a_text_field_that_refuses_blank_states_that_whitespace_alone_is_blank(client, db):
    """DRF strips a CharField's value (str.strip) before its blank check, so the schema's pattern must refuse an
    all-whitespace string wherever the serializer refuses blank ones: the pattern and the field agree on every value."""
    import re

    import yaml
    from rest_framework import serializers

    schema = yaml.safe_load(client.get("/api/schema/").content)
    properties = schema["components"]["schemas"]["TaskCreateInputRequest"]["properties"]
    title = re.compile(properties["title"]["pattern"])
    field = serializers.CharField(max_length=200)
    whitespace = [chr(c) for c in range(0x3001) if chr(c).isspace()]
    values = [*whitespace, "".join(whitespace), "a", " a ", "\u3000x\u3000", "\x1c\x1dz", "\x00", "a\x00"]
    for value in values:
        try:
            field.run_validation(value)
            accepted = True
        except serializers.ValidationError:
            accepted = False
        assert bool(title.search(value)) == accepted, repr(value)
    # A comment body keeps its whitespace as sent, and its own validator refuses all-whitespace: same agreement.
    from tasks_app.api.serializers import CommentInputSerializer

    body_schema = schema["components"]["schemas"]["CommentInputRequest"]["properties"]["body"]
    body = re.compile(body_schema["pattern"])
    # \s means other characters to a JSON Schema (ECMA-262) validator than to Python (\x1c-\x1f): spelled out instead.
    assert "\\s" not in body_schema["pattern"].lower() and "\\s" not in title.pattern.lower()
    for value in values:
        accepted = CommentInputSerializer(data={"body": value}).is_valid()
        assert bool(body.search(value)) == accepted, repr(value)
    # A text field that accepts blank keeps the plain NUL-free pattern.
    description = re.compile(properties["description"]["oneOf"][0]["pattern"])
    assert description.search("   ") and not description.search("a\x00")


def test_every_integer_query_filter_states_its_bounds(db):
    """A filter refuses an id past 2**63 - 1 with a 400, so the schema says so (the fuzzer sent ?label=10**30).
    Path ids need no bound: a longer one matches no route (404), and `page` past the end is a 404 too."""
    missing = []
    for path, operations in generated()["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                schema = param.get("schema", {})
                item = schema.get("items", {}) if schema.get("type") == "array" else schema
                if param["in"] != "query" or param["name"] == "page" or item.get("type") != "integer":
                    continue
                if "enum" not in item and not {"minimum", "maximum"} <= set(item):
                    missing.append((method, path, param["name"]))
    assert not missing
