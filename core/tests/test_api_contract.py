"""The API contract as a consumer sees it (issue 13's "API contract" defects, each failing on the old main):
numeric ids only, an API root, one error envelope for every 4xx, strict writes and ordering, naive datetimes
refused in filters, Location on 201, whitespace kept in long text, export media types as the schema says."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tasks_app.models import Comment, Task
from tasks_app.tests.factories import CommentFactory, ProjectFactory, TaskFactory, UserFactory
from tests.support.api import api_error_codes


def assert_envelope(r, status):
    assert r.status_code == status, r.content
    assert r["Content-Type"].startswith("application/json"), r["Content-Type"]
    body = r.json()
    assert set(body) == {"type", "errors"} and body["errors"], body
    # 400: validation_error (a parse error is a client_error); any other 4xx: client_error
    assert body["type"] in (("validation_error", "client_error") if status == 400 else ("client_error",)), body
    for error in body["errors"]:
        assert set(error) == {"code", "detail", "attr"}, error
        assert re.fullmatch(r"[a-z_]+", error["code"]), error
        assert isinstance(error["detail"], str) and error["detail"]
    return body


# --- ids -----------------------------------------------------------------------------------------------------
def _api_patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        regex = prefix + str(entry.pattern.regex.pattern).lstrip("^").rstrip("$").replace(r"\Z", "")
        if isinstance(entry, URLResolver):
            yield from _api_patterns(entry, regex)
        elif isinstance(entry, URLPattern) and regex.startswith("api/v1/"):
            yield regex


def test_every_id_in_every_api_route_is_numeric_only():
    """No route takes a non-numeric id to a lookup (which was a 500 on projects, tasks and comments)."""
    checked = 0
    for regex in _api_patterns():
        for name, group in re.findall(r"\(\?P<(\w+)>([^)]*)\)", regex):
            if name in ("token", "format"):  # the signed unsubscribe token; DRF's format suffix
                continue
            assert group in (r"\d+", "[0-9]+", r"\d{1,18}"), f"{regex}: {name} matches {group!r}"
            checked += 1
    assert checked >= 15


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/projects/abc/",
        "/api/v1/projects/1/members/abc/",
        "/api/v1/tasks/abc/",
        "/api/v1/tasks/1.5/",
        "/api/v1/tasks/1/comments/abc/",
        "/api/v1/tasks/abc/comments/",
        "/api/v1/recurring-tasks/abc/",
        "/api/v1/webhooks/abc/",
        "/api/v1/exports/abc/",
        "/api/v1/notifications/abc/",
        "/api/v1/auth/tokens/abc/",
        "/api/v1/no-such-thing/",
    ],
)
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_non_numeric_id_is_a_json_404(cast, api, url, method):
    body = assert_envelope(getattr(api(cast.owner), method)(url, {}, format="json"), 404)
    assert body["errors"][0]["code"] == "not_found"


def test_router_404_is_json_even_with_debug(client, settings):
    settings.DEBUG = True
    assert_envelope(client.get("/api/v1/projects/abc/"), 404)


# --- the API root ----------------------------------------------------------------------------------------------
def test_api_root_links_to_the_resources(cast, api):
    r = api().get("/api/v1/")
    assert r.status_code == 200
    links = r.json()
    assert {"projects", "tasks", "webhooks", "exports", "auth-token", "auth-tokens", "users", "schema"} <= set(links)
    client = api(cast.owner)
    for name, url in links.items():
        if name != "auth-token":  # POST only
            assert client.get(url).status_code == 200, (name, url)


# --- one envelope ----------------------------------------------------------------------------------------------
class TestEnvelope:
    def test_field_errors_name_their_field_with_a_code(self, cast, api):
        r = api(cast.owner).post("/api/v1/tasks/", {"project": cast.project.pk, "title": "x" * 201}, format="json")
        body = assert_envelope(r, 400)
        assert body["errors"] == [{"code": "max_length", "detail": body["errors"][0]["detail"], "attr": "title"}]

    def test_nested_errors_are_dotted(self, cast, api):
        r = api(cast.owner).post(
            "/api/v1/webhooks/",
            {"project": cast.project.pk, "url": "https://example.com/h", "events": ["task.created", "bogus"]},
            format="json",
        )
        assert_envelope(r, 400)
        assert api_error_codes(r) == {"events.1": ["invalid_choice"]}

    def test_parse_error(self, cast, api):
        r = api(cast.owner).post("/api/v1/tasks/", "{not json", content_type="application/json")
        assert assert_envelope(r, 400)["errors"][0]["code"] == "parse_error"

    def test_401_403(self, cast, api):
        assert assert_envelope(api().get("/api/v1/tasks/"), 401)["errors"][0]["code"] == "not_authenticated"
        r = api(cast.viewer).post("/api/v1/tasks/", {"project": cast.project.pk, "title": "x"}, format="json")
        assert assert_envelope(r, 403)["errors"][0]["code"] == "permission_denied"

    def test_bad_token_is_401_authentication_failed(self, db, client):
        r = client.get("/api/v1/tasks/", HTTP_AUTHORIZATION="Token nope")
        assert assert_envelope(r, 401)["errors"][0]["code"] == "authentication_failed"

    def test_405_keeps_allow(self, cast, api):
        r = api(cast.owner).put("/api/v1/notifications/read-all/", {}, format="json")
        assert assert_envelope(r, 405)["errors"][0]["code"] == "method_not_allowed"
        assert "POST" in r["Allow"]

    def test_415(self, cast, api):
        r = api(cast.owner).post("/api/v1/tasks/", "title=x", content_type="text/plain")
        assert assert_envelope(r, 415)["errors"][0]["code"] == "unsupported_media_type"

    def test_invalid_page_has_its_code(self, cast, api):
        r = api(cast.owner).get("/api/v1/tasks/?page=99")
        assert assert_envelope(r, 404)["errors"][0]["code"] == "invalid_page"

    def test_duplicate_member_is_409_already_member(self, cast, api):
        r = api(cast.owner).post(
            f"/api/v1/projects/{cast.project.pk}/members/", {"user": cast.member.pk, "role": "viewer"}, format="json"
        )
        assert_envelope(r, 409)
        assert api_error_codes(r) == {"user": ["already_member"]}

    def test_business_conflict_keeps_its_code(self, cast, api):
        from tasks_app.models import Project

        Project.objects.filter(pk=cast.project.pk).update(archived=True)
        r = api(cast.owner).post("/api/v1/tasks/", {"project": cast.project.pk, "title": "x"}, format="json")
        assert assert_envelope(r, 409)["errors"][0]["code"] == "archived"

    def test_filter_errors(self, cast, api):
        r = api(cast.owner).get("/api/v1/tasks/?status=bogus&assignee=x")
        assert_envelope(r, 400)
        assert set(api_error_codes(r)) == {"status", "assignee"}


# --- strict writes ---------------------------------------------------------------------------------------------
class TestStrictWrites:
    def test_read_only_field_in_a_patch_is_a_400_naming_it(self, cast, api):
        other = ProjectFactory(owner=cast.owner)
        task = TaskFactory(project=cast.project, title="Before")
        r = api(cast.owner).patch(f"/api/v1/tasks/{task.pk}/", {"project": other.pk, "title": "After"}, format="json")
        assert_envelope(r, 400)
        assert api_error_codes(r) == {"project": ["unexpected_field"]}
        task.refresh_from_db()
        assert (task.project_id, task.title) == (cast.project.pk, "Before")

    @pytest.mark.parametrize(
        "url, body",
        [
            ("/api/v1/projects/", {"name": "x", "id": 5}),
            ("/api/v1/tasks/", {"title": "x", "created_by": 1}),
            ("/api/v1/me/", {"email": "me@example.test"}),
            ("/api/v1/auth/tokens/", {"name": "x", "token": "tm_mine"}),
        ],
    )
    def test_unknown_or_read_only_keys_are_refused(self, cast, api, url, body):
        if url == "/api/v1/tasks/":
            body["project"] = cast.project.pk
        client = api(cast.owner)
        r = client.patch(url, body, format="json") if url == "/api/v1/me/" else client.post(url, body, format="json")
        assert_envelope(r, 400)
        assert "unexpected_field" in sum(api_error_codes(r).values(), [])

    def test_unknown_ordering_is_a_400(self, cast, api):
        r = api(cast.owner).get("/api/v1/tasks/?ordering=password")
        assert_envelope(r, 400)
        assert api_error_codes(r) == {"ordering": ["invalid_ordering"]}
        assert api(cast.owner).get("/api/v1/tasks/?ordering=-due_at,priority").status_code == 200

    @pytest.mark.parametrize(
        "query", ["due_before=2026-05-01T09:00:00", "due_after=2026-05-01", "due_after=2026-05-01T09:00"]
    )
    def test_naive_datetime_in_a_list_filter_is_a_400(self, cast, api, query):
        r = api(cast.owner).get(f"/api/v1/tasks/?{query}")
        assert_envelope(r, 400)
        assert list(api_error_codes(r).values()) == [["naive"]]
        assert api(cast.owner).get("/api/v1/tasks/?due_before=2026-05-01T09:00:00Z").status_code == 200


# --- Location --------------------------------------------------------------------------------------------------
def test_every_201_carries_the_location_of_what_it_created(cast, api):
    client = api(cast.owner)
    task = TaskFactory(project=cast.project, due_at="2030-01-01T00:00:00Z")
    newcomer = UserFactory(username="newcomer")
    creations = [
        ("/api/v1/projects/", {"name": "P"}),
        ("/api/v1/tasks/", {"project": cast.project.pk, "title": "T"}),
        (f"/api/v1/tasks/{task.pk}/comments/", {"body": "hello"}),
        (f"/api/v1/tasks/{task.pk}/reminders/", {"offset_minutes": -60}),
        (f"/api/v1/projects/{cast.project.pk}/members/", {"user": newcomer.pk}),
        (
            "/api/v1/recurring-tasks/",
            {"project": cast.project.pk, "title": "R", "rrule": "FREQ=DAILY", "dtstart": "2030-01-01T09:00:00Z"},
        ),
        ("/api/v1/webhooks/", {"project": cast.project.pk, "url": "http://127.0.0.1:9/h", "events": ["task.created"]}),
        ("/api/v1/auth/tokens/", {"name": "ci"}),
    ]
    for url, body in creations:
        r = client.post(url, body, format="json")
        assert r.status_code == 201, (url, r.content)
        location = r["Location"]
        assert location.startswith("http://testserver" + url), (url, location)
        follow = client.get(location)
        assert follow.status_code == 200, (location, follow.content)
        created_id = r.json()["id"] if "id" in r.json() else r.json()["user"]["id"]
        assert (follow.json().get("id") or follow.json()["user"]["id"]) == created_id


# --- long text keeps its whitespace ----------------------------------------------------------------------------
def test_descriptions_and_comment_bodies_keep_leading_and_trailing_whitespace(cast, api):
    client = api(cast.owner)
    text = "    indented code\n\tand a tab\n\n"
    r = client.post(
        "/api/v1/tasks/", {"project": cast.project.pk, "title": "  Title  ", "description": text}, format="json"
    )
    assert r.status_code == 201
    assert (r.json()["title"], r.json()["description"]) == ("Title", text)
    assert Task.objects.get(pk=r.json()["id"]).description == text
    r = client.post(f"/api/v1/tasks/{r.json()['id']}/comments/", {"body": text}, format="json")
    assert r.status_code == 201 and r.json()["body"] == text
    assert Comment.objects.get(pk=r.json()["id"]).body == text
    r = client.patch(f"/api/v1/projects/{cast.project.pk}/", {"description": text}, format="json")
    assert r.json()["description"] == text


def test_a_whitespace_only_comment_is_still_refused(cast, api):
    task = TaskFactory(project=cast.project)
    r = api(cast.owner).post(f"/api/v1/tasks/{task.pk}/comments/", {"body": "  \n "}, format="json")
    assert_envelope(r, 400)
    CommentFactory  # noqa: B018  (factories imported for the module's other tests)


# What the live fuzz found after issue 15's protocol landed (each failed before its fix).
@pytest.mark.parametrize(
    "url,attr,code",
    [
        ("/api/v1/tasks/?overdue=null", "overdue", "invalid"),  # a boolean filter read "null" as no filter
        ("/api/v1/tasks/?is_blocked=abc", "is_blocked", "invalid"),
        ("/api/v1/projects/?pagination=AAA", "pagination", "invalid_choice"),  # an unknown mode paged by number
        ("/api/v1/tasks/{task}/activity/?page_size=null", "page_size", "invalid_page_size"),
        ("/api/v1/projects/?cursor=nonsense", "cursor", "invalid_cursor"),
        ("/api/v1/changes/?cursor=nonsense", "cursor", "invalid_cursor"),
    ],
)
def test_query_values_the_schema_refuses_are_400s(cast, api, url, attr, code):
    task = TaskFactory(project=cast.project, created_by=cast.owner)
    r = api(cast.owner).get(url.format(task=task.pk))
    assert_envelope(r, 400)
    assert api_error_codes(r) == {attr: [code]}


def test_a_malformed_page_is_refused_in_cursor_mode_too(cast, api):
    r = api(cast.owner).get("/api/v1/exports/?pagination=cursor&page=x")
    assert_envelope(r, 404)
    assert api_error_codes(r) == {None: ["invalid_page"]}


def test_bulk_data_may_be_null_and_unknown_labels_do_not_exist(cast, api):
    task = TaskFactory(project=cast.project, created_by=cast.owner)
    r = api(cast.owner).post(
        "/api/v1/tasks/bulk/", {"operations": [{"op": "delete", "id": task.pk, "data": None}]}, format="json"
    )
    assert r.status_code == 200 and r.json()["results"][0]["status"] == 204, r.content
    other = TaskFactory(project=cast.project, created_by=cast.owner)
    r = api(cast.owner).patch(f"/api/v1/tasks/{other.pk}/", {"labels": [987654]}, format="json")
    assert r.status_code == 400 and api_error_codes(r) == {"labels": ["does_not_exist"]}


def test_a_bad_page_size_is_refused_before_a_conditional_list_answers_304(cast, api):
    r = api(cast.owner).get("/api/v1/recurring-tasks/?page_size=100000", HTTP_IF_NONE_MATCH="*")
    assert_envelope(r, 400)
    assert api_error_codes(r) == {"page_size": ["invalid_page_size"]}


def test_schema_states_the_idempotency_key_and_bulk_bounds(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    post = schema["paths"]["/api/v1/tasks/"]["post"]
    key = next(p for p in post["parameters"] if p["name"] == "Idempotency-Key")["schema"]
    assert (key["minLength"], key["maxLength"]) == (1, 255) and re.fullmatch(key["pattern"], "retry-1 x")
    assert not re.fullmatch(key["pattern"], "   ")
    bulk = schema["components"]["schemas"]["BulkInputRequest"]["properties"]["operations"]
    assert (bulk["minItems"], bulk["maxItems"]) == (1, 100)
