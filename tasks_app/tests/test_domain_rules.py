"""A test per rule of labels, subtasks, relations, board order, bulk edits and the new filters."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tasks_app.models import Event, Label, Profile, Task, TaskRelation
from tasks_app.services.labels import label_create
from tasks_app.services.positions import evenly_spaced, positions_rebalance, rank_after, rank_between
from tasks_app.services.relations import relation_add
from tasks_app.services.tasks import task_create, task_update
from tasks_app.tests.factories import ProjectFactory, TaskFactory
from tests.support.api import api_error_codes, api_errors


def _task(cast, title="t", **kw):
    return task_create(actor=cast.member, project=cast.project, title=title, **kw)


def _ids(response):
    return sorted(row["id"] for row in response.json()["results"])


class TestLabels:
    def test_name_clash_ignores_case(self, cast, api):
        client = api(cast.member)
        url = f"/api/v1/projects/{cast.project.pk}/labels/"
        assert client.post(url, {"name": "Bug", "color": "#ff0000"}, format="json").status_code == 201
        r = client.post(url, {"name": "bUG"}, format="json")
        assert r.status_code == 409 and "name" in api_errors(r)
        assert Label.objects.filter(project=cast.project).count() == 1
        # Another project may use the same name.
        other = ProjectFactory(owner=cast.member)
        assert client.post(f"/api/v1/projects/{other.pk}/labels/", {"name": "bug"}, format="json").status_code == 201

    def test_members_create_admins_rename_and_delete(self, cast, api):
        label = label_create(project=cast.project, actor=cast.member, name="ux")
        url = f"/api/v1/projects/{cast.project.pk}/labels/{label.pk}/"
        assert (
            api(cast.viewer)
            .post(f"/api/v1/projects/{cast.project.pk}/labels/", {"name": "x"}, format="json")
            .status_code
            == 403
        )
        assert api(cast.member).patch(url, {"name": "UX"}, format="json").status_code == 403
        assert api(cast.admin).patch(url, {"name": "UX"}, format="json").json()["name"] == "UX"
        task = _task(cast, labels=[label.pk])
        assert api(cast.member).delete(url).status_code == 403
        assert api(cast.admin).delete(url).status_code == 204
        assert list(task.labels.all()) == []
        assert Event.objects.filter(task_id=task.pk, type="label.removed").count() == 1
        assert api(cast.outsider).get(f"/api/v1/projects/{cast.project.pk}/labels/").status_code == 404

    def test_label_of_another_project_is_refused(self, cast, api):
        foreign = label_create(project=ProjectFactory(owner=cast.member), actor=cast.member, name="x")
        r = api(cast.member).post(
            "/api/v1/tasks/", {"project": cast.project.pk, "title": "t", "labels": [foreign.pk]}, format="json"
        )
        assert r.status_code == 400 and "labels" in api_errors(r)
        assert not Task.objects.filter(title="t").exists()

    def test_filters_any_all_and_no_label(self, cast, api):
        a = label_create(project=cast.project, actor=cast.member, name="a")
        b = label_create(project=cast.project, actor=cast.member, name="b")
        only_a, both, none = _task(cast, labels=[a.pk]), _task(cast, labels=[a.pk, b.pk]), _task(cast)
        client = api(cast.member)
        assert _ids(client.get(f"/api/v1/tasks/?label={a.pk}&label={b.pk}")) == sorted([only_a.pk, both.pk])
        assert _ids(client.get(f"/api/v1/tasks/?label={a.pk}&label={b.pk}&label_mode=all")) == [both.pk]
        assert _ids(client.get("/api/v1/tasks/?no_label=true")) == [none.pk]
        assert client.get("/api/v1/tasks/?label=abc").status_code == 400

    def test_label_changes_are_in_the_activity(self, cast, api):
        a = label_create(project=cast.project, actor=cast.member, name="a")
        task = _task(cast)
        api(cast.member).patch(f"/api/v1/tasks/{task.pk}/", {"labels": [a.pk]}, format="json")
        api(cast.member).patch(f"/api/v1/tasks/{task.pk}/", {"labels": []}, format="json")
        types = [e["type"] for e in api(cast.member).get(f"/api/v1/tasks/{task.pk}/activity/").json()["results"]]
        assert types == ["label.removed", "label.added", "task.created"]


class TestSubtasks:
    def test_depth_limit_is_five_levels(self, cast, api):
        chain = [_task(cast, "level 1")]
        for level in range(2, 6):
            chain.append(_task(cast, f"level {level}", parent=chain[-1]))
        r = api(cast.member).post(
            "/api/v1/tasks/", {"project": cast.project.pk, "title": "level 6", "parent": chain[-1].pk}, format="json"
        )
        assert r.status_code == 400 and "parent" in api_errors(r)
        # Moving a two-level subtree under level 4 would also make six levels.
        top = _task(cast, "top")
        _task(cast, "below", parent=top)
        r = api(cast.member).patch(f"/api/v1/tasks/{top.pk}/", {"parent": chain[3].pk}, format="json")
        assert r.status_code == 400 and "parent" in api_errors(r)
        assert (
            api(cast.member).patch(f"/api/v1/tasks/{top.pk}/", {"parent": chain[2].pk}, format="json").status_code
            == 200
        )

    def test_cross_project_parent_is_refused(self, cast, api):
        other_project = ProjectFactory(owner=cast.member)
        foreign = task_create(actor=cast.member, project=other_project, title="elsewhere")
        r = api(cast.member).post(
            "/api/v1/tasks/", {"project": cast.project.pk, "title": "t", "parent": foreign.pk}, format="json"
        )
        assert r.status_code == 400 and "parent" in api_errors(r)
        task = _task(cast)
        r = api(cast.member).patch(f"/api/v1/tasks/{task.pk}/", {"parent": foreign.pk}, format="json")
        assert r.status_code == 400 and Task.objects.get(pk=task.pk).parent_id is None

    def test_no_cycles(self, cast, api):
        a = _task(cast, "a")
        b = _task(cast, "b", parent=a)
        c = _task(cast, "c", parent=b)
        for parent in (c, a):
            r = api(cast.member).patch(f"/api/v1/tasks/{a.pk}/", {"parent": parent.pk}, format="json")
            assert r.status_code == 400 and "parent" in api_errors(r)

    def test_counts_and_completing_a_parent_with_open_subtasks_is_409(self, cast, api):
        parent = _task(cast, "parent")
        first, second = _task(cast, "1", parent=parent), _task(cast, "2", parent=parent)
        task_update(task=first, actor=cast.member, data={"status": "done"})
        client = api(cast.member)
        body = client.get(f"/api/v1/tasks/{parent.pk}/").json()
        assert (body["subtask_count"], body["subtasks_done"]) == (2, 1)
        r = client.patch(f"/api/v1/tasks/{parent.pk}/", {"status": "done"}, format="json")
        assert r.status_code == 409 and str(second.pk) in str(api_errors(r)["status"])
        task_update(task=second, actor=cast.member, data={"status": "cancelled"})
        assert client.patch(f"/api/v1/tasks/{parent.pk}/", {"status": "done"}, format="json").status_code == 200

    def test_deleting_a_parent_deletes_the_subtree_with_events(self, cast, api):
        parent = _task(cast, "parent")
        child = _task(cast, "child", parent=parent)
        grandchild = _task(cast, "grandchild", parent=child)
        assert api(cast.member).delete(f"/api/v1/tasks/{parent.pk}/").status_code == 204
        assert not Task.objects.filter(pk__in=[parent.pk, child.pk, grandchild.pk]).exists()
        deleted = list(Event.objects.filter(type="task.deleted").order_by("id").values_list("task_id", flat=True))
        assert deleted == [grandchild.pk, child.pk, parent.pk]

    def test_parent_and_is_root_filters(self, cast, api):
        parent = _task(cast, "parent")
        child = _task(cast, "child", parent=parent)
        client = api(cast.member)
        assert _ids(client.get(f"/api/v1/tasks/?parent={parent.pk}")) == [child.pk]
        assert _ids(client.get("/api/v1/tasks/?is_root=true")) == [parent.pk]
        activity = [e["type"] for e in client.get(f"/api/v1/tasks/{parent.pk}/activity/").json()["results"]]
        assert activity == ["subtask.added", "task.created"]


class TestRelations:
    def test_blocking_cycle_across_a_chain_of_four_is_refused_and_named(self, cast, api):
        a, b, c, d = (_task(cast, name) for name in "abcd")
        for source, target in ((a, b), (b, c), (c, d)):
            relation_add(task=source, actor=cast.member, other=target, type="blocks")
        r = api(cast.member).post(f"/api/v1/tasks/{d.pk}/relations/", {"type": "blocks", "task": a.pk}, format="json")
        assert r.status_code == 400
        assert r.json()["errors"][0]["code"] == "blocking_cycle"
        assert f"#{d.pk} → #{a.pk} → #{b.pk} → #{c.pk} → #{d.pk}" in r.json()["errors"][0]["detail"]
        # Same cycle written from the other side (a blocked_by d).
        r = api(cast.member).post(
            f"/api/v1/tasks/{a.pk}/relations/", {"type": "blocked_by", "task": d.pk}, format="json"
        )
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "blocking_cycle"
        assert TaskRelation.objects.count() == 3

    def test_blocked_by_is_one_row_read_both_ways_and_is_blocked(self, cast, api):
        blocker, blocked = _task(cast, "blocker"), _task(cast, "blocked")
        client = api(cast.member)
        r = client.post(
            f"/api/v1/tasks/{blocked.pk}/relations/", {"type": "blocked_by", "task": blocker.pk}, format="json"
        )
        assert r.status_code == 201 and r.json()["type"] == "blocked_by"
        relation = TaskRelation.objects.get()
        assert (relation.source_id, relation.target_id, relation.type) == (blocker.pk, blocked.pk, "blocks")
        assert client.get(f"/api/v1/tasks/{blocker.pk}/relations/").json()["results"][0]["type"] == "blocks"
        assert client.get(f"/api/v1/tasks/{blocked.pk}/").json()["is_blocked"] is True
        assert _ids(client.get("/api/v1/tasks/?is_blocked=true")) == [blocked.pk]
        task_update(task=blocker, actor=cast.member, data={"status": "done"})
        assert client.get(f"/api/v1/tasks/{blocked.pk}/").json()["is_blocked"] is False
        assert _ids(client.get("/api/v1/tasks/?is_blocked=false")) == sorted([blocker.pk, blocked.pk])
        types = {e.type for e in Event.objects.filter(task_id__in=[blocker.pk, blocked.pk])}
        assert "relation.added" in types
        assert client.delete(f"/api/v1/tasks/{blocked.pk}/relations/{relation.pk}/").status_code == 204
        assert Event.objects.filter(type="relation.removed").count() == 2

    def test_relations_to_invisible_tasks_are_refused(self, cast, api):
        hidden = TaskFactory(project=ProjectFactory(owner=cast.outsider))
        task = _task(cast)
        r = api(cast.member).post(
            f"/api/v1/tasks/{task.pk}/relations/", {"type": "relates_to", "task": hidden.pk}, format="json"
        )
        assert r.status_code == 400 and "task" in api_errors(r)
        assert (
            api(cast.viewer)
            .post(f"/api/v1/tasks/{task.pk}/relations/", {"type": "relates_to", "task": _task(cast).pk}, format="json")
            .status_code
            == 403
        )


class TestFilters:
    def test_priority_created_by_overdue(self, cast, api):
        now = datetime(2026, 6, 1, 12, tzinfo=UTC)
        with time_machine.travel(now, tick=False):
            late = _task(cast, "late", priority=4, due_at=now - timedelta(hours=1))
            _task(cast, "late but done", status="done", due_at=now - timedelta(hours=1))
            mine = task_create(actor=cast.admin, project=cast.project, title="mine", priority=1)
            client = api(cast.member)
            assert _ids(client.get("/api/v1/tasks/?priority=4&priority=1")) == sorted([late.pk, mine.pk])
            assert _ids(client.get(f"/api/v1/tasks/?created_by={cast.admin.pk}")) == [mine.pk]
            assert _ids(client.get("/api/v1/tasks/?overdue=true")) == [late.pk]

    def test_due_today_uses_the_users_timezone(self, cast, api):
        profile = Profile.objects.get(user=cast.member)
        profile.timezone = "Pacific/Auckland"  # UTC+12 in June
        profile.save()
        cast.member.profile = profile
        now = datetime(2026, 6, 1, 20, tzinfo=UTC)  # 2 June 08:00 in Auckland
        with time_machine.travel(now, tick=False):
            today_there = _task(cast, "today there", due_at=datetime(2026, 6, 2, 10, tzinfo=UTC))
            _task(cast, "today in UTC only", due_at=datetime(2026, 6, 1, 10, tzinfo=UTC))
            assert _ids(api(cast.member).get("/api/v1/tasks/?due_today=true")) == [today_there.pk]


class TestBoardPosition:
    def test_rank_between_and_rebalance_keep_order(self):
        ranks = [rank_between("", None)]
        for _ in range(200):  # always insert right after the first card: the worst case for length
            ranks.insert(1, rank_between(ranks[0], ranks[1] if len(ranks) > 1 else None))
        assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
        spread = evenly_spaced(1000)
        assert spread == sorted(spread) and len(set(spread)) == 1000 and max(map(len, spread)) <= 3

    def test_move_writes_one_row_between_neighbours(self, cast, api, django_assert_max_num_queries):
        a, b, c = _task(cast, "a"), _task(cast, "b"), _task(cast, "c")
        client = api(cast.member)
        r = client.post(f"/api/v1/tasks/{c.pk}/move/", {"after": a.pk, "before": b.pk}, format="json")
        assert r.status_code == 200
        order = [row["title"] for row in client.get("/api/v1/tasks/?ordering=position").json()["results"]]
        assert order == ["a", "c", "b"]
        r = client.post(f"/api/v1/tasks/{a.pk}/move/", {"status": "in_progress"}, format="json")
        assert r.json()["status"] == "in_progress"
        r = client.post(f"/api/v1/tasks/{b.pk}/move/", {"after": a.pk}, format="json")
        assert r.status_code == 400 and api_error_codes(r) == {"after": ["not_in_column"]}  # a is in another column now
        # Refusals that depend on state have codes of their own (a schema cannot state them).
        elsewhere = TaskFactory(title="elsewhere")  # another project's task reads as missing
        for neighbour in (elsewhere.pk, 2**40):
            r = client.post(f"/api/v1/tasks/{b.pk}/move/", {"before": neighbour}, format="json")
            assert r.status_code == 400 and api_error_codes(r) == {"before": ["does_not_exist"]}
        r = client.post(f"/api/v1/tasks/{b.pk}/move/", {"after": b.pk}, format="json")
        assert r.status_code == 400 and api_error_codes(r) == {"after": ["own_neighbour"]}

    def test_move_with_one_neighbour_lands_right_next_to_it(self, cast, api):
        a, b, c, d = (_task(cast, t) for t in "abcd")
        client = api(cast.member)

        def order():
            return "".join(row["title"] for row in client.get("/api/v1/tasks/?ordering=position").json()["results"])

        assert client.post(f"/api/v1/tasks/{d.pk}/move/", {"after": a.pk}, format="json").status_code == 200
        assert order() == "adbc"  # right below a, not somewhere towards the end
        assert client.post(f"/api/v1/tasks/{a.pk}/move/", {"before": c.pk}, format="json").status_code == 200
        assert order() == "dbac"  # right above c, not at the top
        assert client.post(f"/api/v1/tasks/{d.pk}/move/", {"after": c.pk}, format="json").status_code == 200
        assert order() == "bacd"

    def test_appending_keeps_ranks_short(self):
        ranks = [rank_after("")]
        for _ in range(5000):  # bisecting towards the end would pass 128 characters after ~770
            ranks.append(rank_after(ranks[-1]))
        assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
        assert max(map(len, ranks)) <= 4 and not any(r.endswith("0") for r in ranks)
        long_last = "i" + "z" * 100  # a column whose last card has a long rank after many moves
        assert rank_after(long_last) == "j" and rank_after("zzzz") > "zzzz"

    def test_new_cards_land_at_the_end_of_their_column(self, cast, api):
        client = api(cast.member)
        for title in ("one", "two", "three"):
            r = client.post("/api/v1/tasks/", {"project": cast.project.pk, "title": title}, format="json")
            assert r.status_code == 201
        done = _task(cast, "done first", status="done")
        Task.objects.filter(pk=done.pk).update(position="i" + "z" * 119)  # a long rank at the column's end
        r = client.patch(f"/api/v1/tasks/{Task.objects.get(title='one').pk}/", {"status": "done"}, format="json")
        assert r.status_code == 200 and len(r.json()["position"]) == 1
        order = [row["title"] for row in client.get("/api/v1/tasks/?ordering=position&status=todo").json()["results"]]
        assert order == ["two", "three"]
        order = [row["title"] for row in client.get("/api/v1/tasks/?ordering=position&status=done").json()["results"]]
        assert order == ["done first", "one"]

    def test_recurring_instances_land_at_the_end_of_their_column(self, cast, api):
        from zoneinfo import ZoneInfo

        from tasks_app.recurring.engine import recurring_instance_create, recurring_process_due
        from tasks_app.tests.recurring_helpers import make_template

        berlin = ZoneInfo("Europe/Berlin")
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=berlin), tick=False):
            first = _task(cast, "made by hand")
            make_template(cast, title="daily", dtstart=datetime(2026, 5, 1, 9, tzinfo=berlin))
            make_template(cast, title="hourly", rrule="FREQ=HOURLY", dtstart=datetime(2026, 5, 1, 9, tzinfo=berlin))
            single = make_template(
                cast, title="single", rrule="FREQ=WEEKLY", dtstart=datetime(2026, 6, 1, 9, tzinfo=berlin)
            )
        with time_machine.travel(datetime(2026, 5, 1, 11, 30, tzinfo=berlin), tick=False):
            assert recurring_process_due()["created"] == 4  # one daily (09:00), three hourly (09-11:00)
            last = _task(cast, "made by hand later")
            task, created = recurring_instance_create(
                template_id=single.pk, occurrence_at=datetime(2026, 6, 1, 7, tzinfo=UTC)
            )
            assert created
        rows = Task.objects.filter(project=cast.project, status="todo").order_by("position", "id")
        assert [(t.title, t.occurrence_at.hour if t.occurrence_at else None) for t in rows] == [
            ("made by hand", None),
            ("daily", 7),  # the batch in occurrence order (UTC), after what was there
            ("hourly", 7),
            ("hourly", 8),
            ("hourly", 9),
            ("made by hand later", None),
            ("single", 7),
        ]
        assert len({t.position for t in rows}) == len(rows) and first.position < last.position

    def test_rebalance_task_respaces_a_column(self, cast):
        tasks = [_task(cast, str(i)) for i in range(5)]
        Task.objects.filter(pk=tasks[2].pk).update(position="0" * 30 + "1")
        order_before = list(Task.objects.filter(project=cast.project).order_by("position", "id").values_list("id"))
        assert positions_rebalance(project_id=cast.project.pk, status="todo") >= 1
        after = list(Task.objects.filter(project=cast.project).order_by("position", "id").values_list("id", "position"))
        assert [row[:1] for row in after] == order_before and max(len(p) for _, p in after) <= 2


class TestBulk:
    def test_mix_of_allowed_and_forbidden_items_commits_each_on_its_own(self, cast, api):
        label = label_create(project=cast.project, actor=cast.member, name="x")
        mine = _task(cast, "mine")
        admins = task_create(actor=cast.admin, project=cast.project, title="admin's")
        hidden = TaskFactory(project=ProjectFactory(owner=cast.outsider))
        ops = [
            {"op": "update", "id": mine.pk, "data": {"priority": 4}},
            {"op": "delete", "id": admins.pk},  # a member may only delete their own tasks
            {"op": "add_labels", "id": mine.pk, "data": {"labels": [label.pk]}},
            {"op": "update", "id": hidden.pk, "data": {"title": "pwned"}},
            {"op": "update", "id": mine.pk, "data": {"assignee": cast.outsider.pk}},
            {"op": "move", "id": admins.pk, "data": {"status": "in_progress"}},
        ]
        r = api(cast.member).post("/api/v1/tasks/bulk/", {"operations": ops}, format="json")
        assert r.status_code == 200
        statuses = [item["status"] for item in r.json()["results"]]
        assert statuses == [200, 403, 200, 404, 400, 200]
        assert "assignee" in {e["attr"] for e in r.json()["results"][4]["errors"]["errors"]}
        mine.refresh_from_db()
        assert mine.priority == 4 and list(mine.labels.values_list("pk", flat=True)) == [label.pk]
        assert mine.assignee_id is None
        assert Task.objects.filter(pk=admins.pk, status="in_progress").exists()
        assert Task.objects.get(pk=hidden.pk).title != "pwned"

    def test_over_100_operations_is_400(self, cast, api):
        ops = [{"op": "delete", "id": 1}] * 101
        assert api(cast.member).post("/api/v1/tasks/bulk/", {"operations": ops}, format="json").status_code == 400


def test_project_counts(cast, api):
    _task(cast, "a")
    _task(cast, "b", status="done")
    body = api(cast.member).get(f"/api/v1/projects/{cast.project.pk}/").json()
    assert body["member_count"] == 4  # owner, admin, member, viewer
    assert body["task_counts"] == {"todo": 1, "in_progress": 0, "done": 1, "cancelled": 0}


@pytest.mark.parametrize(
    "query,expected",
    [
        ("launch", ["a"]),
        ("roc", ["a", "b"]),
        ("zebra", ["c"]),
        ("nothing", []),
        # Only stop words: PostgreSQL's tsquery is empty, so it falls back to SQLite's substring match.
        ("the", ["c"]),
        ("a the", ["c"]),  # the comment holds both; the title "a" and "Rocket launch checklist" only "a"
        ("THE!", ["c"]),
    ],
)
def test_search_covers_title_description_and_comments_with_prefixes(cast, api, query, expected):
    from tasks_app.services.comments import comment_create

    _task(cast, "a", description="Rocket launch checklist")
    _task(cast, "b", description="rocks")
    c = _task(cast, "c")
    comment_create(task=c, actor=cast.member, body="the zebra crossing")
    rows = api(cast.member).get("/api/v1/tasks/", {"search": query}).json()["results"]
    titles = sorted(row["title"] for row in rows)
    assert titles == expected


def test_stop_word_search_costs_one_extra_query_and_no_rank(cast, api, django_assert_num_queries):
    from django.db import connection

    from tasks_app.services.search import search_tsquery_is_empty

    _task(cast, "the plan")
    _task(cast, "other")  # "the" inside a word: a substring match, as on SQLite
    _task(cast, "unrelated")
    if connection.vendor == "postgresql":
        assert search_tsquery_is_empty(["the", "a"]) and not search_tsquery_is_empty(["the", "plan"])
    extra = connection.vendor == "postgresql"  # the emptiness check; it reads no table
    with django_assert_num_queries(3 + extra):
        body = api(cast.member).get("/api/v1/tasks/?search=the").json()
    assert sorted(row["title"] for row in body["results"]) == ["other", "the plan"]
    # A query with one searchable word stays full-text on PostgreSQL (its stop words are dropped).
    titles = [row["title"] for row in api(cast.member).get("/api/v1/tasks/?search=the+plan").json()["results"]]
    assert titles == ["the plan"]


def test_reindex_command_rebuilds_search_documents(cast, api):
    from django.core.management import call_command
    from django.db import connection

    task = TaskFactory(project=cast.project, title="quasar beacon")
    Task.objects.filter(pk=task.pk).update(search_vector=None, title="nebula beacon")
    call_command("reindex_task_search", batch=1)
    found = [row["title"] for row in api(cast.member).get("/api/v1/tasks/?search=nebul").json()["results"]]
    assert found == ["nebula beacon"]
    if connection.vendor == "postgresql":
        assert Task.objects.filter(pk=task.pk, search_vector__isnull=False).exists()
