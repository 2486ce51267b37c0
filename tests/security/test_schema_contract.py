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
    assert set(paths["/api/v1/tasks/"]["get"]["responses"]) == {"200", "400", "401", "403", "404"}  # 404: bad page
    assert set(paths["/api/v1/me/"]["get"]["responses"]) == {"200", "401", "403"}
    # The login-free unsubscribe link never answers 401/403.
    assert set(paths["/api/v1/notifications/unsubscribe/{token}/"]["get"]["responses"]) == {"200", "400", "404"}
    # An operation's own documented errors win over the generic ones.
    download = paths["/api/v1/exports/{id}/download/"]["get"]["responses"]
    assert set(download) >= {"404", "409", "410"} and "Error" not in str(download["410"])


def test_hook_is_idempotent_and_adds_the_error_component(db):
    schema = generated(["drf_spectacular.hooks.postprocess_schema_enums"])
    once = document_error_responses(schema, None, None, True)
    assert set(once["components"]["schemas"]["Error"]["properties"]) == {"detail", "code"}
    assert document_error_responses(once, None, None, True) == once


def test_unmatched_api_url_answers_json_404(client, db):
    r = client.get("/api/v1/tasks/-1/comments/")
    assert r.status_code == 404 and r.json() == {"detail": "Not found.", "code": "not_found"}


def test_unmatched_non_api_url_keeps_the_html_page(client, db):
    r = client.get("/no-such-page/")
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")


def test_served_schema_documents_errors(client, db):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    assert "Error" in schema["components"]["schemas"]
    assert "404" in schema["paths"]["/api/v1/tasks/{id}/"]["get"]["responses"]
