import pytest

from notifications import services
from notifications.mentions import mention_candidates, resolve_mentions
from notifications.models import EmailState, Kind, Notification, NotificationPreference
from tasks_app.models import Role
from tasks_app.services.comments import comment_create, comment_update
from tasks_app.services.tasks import task_assign, task_create
from tasks_app.tests.factories import MembershipFactory, TaskFactory, UserFactory


def published(callbacks):
    """(task_name, args) of the publishes registered with transaction.on_commit."""
    calls = [(cb.args[0], list(cb.keywords["args"])) for cb in callbacks if getattr(cb, "args", None)]
    return [c for c in calls if c[0].startswith(("notifications.", "reminders."))]


class TestNotificationCreate:
    def test_defaults_write_in_app_row_and_queue_email_on_commit(self, cast, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks() as callbacks:
            n = services.notification_create(
                recipient=cast.member,
                kind="webhook_disabled",
                text="Hook off",
                data={"subscription_id": 3, "url_host": "example.org"},
            )
        assert n.show_in_app and n.email_state == EmailState.PENDING
        assert n.data == {"subscription_id": 3, "url_host": "example.org"}
        assert published(callbacks) == [("notifications.send_email_notification", [n.pk])]

    def test_email_off_is_skipped_and_nothing_queued(self, cast, django_capture_on_commit_callbacks):
        services.preferences_update(user=cast.member, changes={"reminder": {"email": False}})
        with django_capture_on_commit_callbacks() as callbacks:
            n = services.notification_create(recipient=cast.member, kind="reminder", text="Due soon")
        assert n.show_in_app and n.email_state == EmailState.SKIPPED
        assert published(callbacks) == []

    def test_in_app_off_keeps_a_hidden_email_record(self, cast, django_capture_on_commit_callbacks):
        services.preferences_update(user=cast.member, changes={"assigned": {"in_app": False}})
        with django_capture_on_commit_callbacks() as callbacks:
            n = services.notification_create(recipient=cast.member, kind="assigned", text="x")
        assert not n.show_in_app and n.email_state == EmailState.PENDING
        assert published(callbacks) == [("notifications.send_email_notification", [n.pk])]

    def test_both_channels_off_writes_nothing(self, cast):
        services.preferences_update(user=cast.member, changes={"mentioned": {"in_app": False, "email": False}})
        assert services.notification_create(recipient=cast.member, kind="mentioned", text="x") is None
        assert not Notification.objects.exists()

    def test_digest_defaults_are_email_only(self, cast):
        n = services.notification_create(recipient=cast.member, kind="daily_summary", text="Your day")
        assert not n.show_in_app and n.email_state == EmailState.PENDING

    def test_unknown_kind_is_rejected(self, cast):
        from core.exceptions import ApplicationError

        with pytest.raises(ApplicationError):
            services.notification_create(recipient=cast.member, kind="bogus", text="x")

    def test_rollback_of_caller_leaves_no_row_and_publishes_nothing(self, cast, django_capture_on_commit_callbacks):
        from django.db import transaction

        with django_capture_on_commit_callbacks() as callbacks:
            with pytest.raises(RuntimeError):
                with transaction.atomic():
                    services.notification_create(recipient=cast.member, kind="assigned", text="x")
                    raise RuntimeError
        assert not Notification.objects.exists()
        assert published(callbacks) == []


class TestAssignment:
    def test_assigning_someone_else_notifies_them_in_the_same_transaction(
        self, cast, django_capture_on_commit_callbacks
    ):
        task = TaskFactory(project=cast.project, title="Fix login")
        with django_capture_on_commit_callbacks() as callbacks:
            task_assign(task=task, actor=cast.owner, assignee=cast.member)
        n = Notification.objects.get()
        assert (n.recipient, n.actor, n.task, n.kind) == (cast.member, cast.owner, task, Kind.ASSIGNED)
        assert "Fix login" in n.text
        assert published(callbacks) == [("notifications.send_task_assignment_notification", [n.pk])]

    def test_self_assignment_and_unassignment_notify_nobody(self, cast):
        task = TaskFactory(project=cast.project)
        task_assign(task=task, actor=cast.member, assignee=cast.member)
        task_assign(task=task, actor=cast.owner, assignee=None)
        assert not Notification.objects.exists()

    def test_creating_a_task_with_an_assignee_notifies(self, cast):
        task = task_create(actor=cast.owner, project=cast.project, title="T", assignee=cast.admin)
        assert Notification.objects.get().task == task

    def test_failed_assignment_writes_no_notification(self, cast):
        from core.exceptions import ApplicationError

        task = TaskFactory(project=cast.project)
        with pytest.raises(ApplicationError):
            task_assign(task=task, actor=cast.owner, assignee=cast.outsider)
        assert not Notification.objects.exists()


class TestMentionParsing:
    @pytest.mark.parametrize(
        "body,expected",
        [
            ("hi @Bob", {"bob"}),
            ("@bob, @carol!", {"bob", "carol"}),
            ("(@bob)", {"bob"}),
            ("mail bob@example.com please", set()),
            ("mail @bob@example.com please", set()),
            ("thanks @bob.", {"bob.", "bob"}),
            ("@first.last and @a-b_c+d", {"first.last", "a-b_c+d"}),
            ("no mentions @ all", set()),
        ],
    )
    def test_candidates(self, body, expected):
        assert mention_candidates(body) == expected

    def test_trailing_dot_prefers_exact_username(self):
        assert resolve_mentions("thanks @bob.", ["bob"]) == {"bob"}
        assert resolve_mentions("thanks @bob.", ["bob", "bob."]) == {"bob."}


@pytest.fixture
def team(cast):
    bob = MembershipFactory(project=cast.project, user=UserFactory(username="Bob"), role=Role.MEMBER).user
    task = TaskFactory(project=cast.project, title="Ship it")
    return cast, bob, task


class TestMentions:
    def test_members_are_notified_case_insensitively_once_each(self, team, django_capture_on_commit_callbacks):
        cast, bob, task = team
        with django_capture_on_commit_callbacks() as callbacks:
            comment = comment_create(task=task, actor=cast.owner, body="@bob and @BOB again, also @viewer")
        rows = Notification.objects.filter(kind="mentioned").order_by("recipient__username")
        assert [(n.recipient, n.comment, n.actor) for n in rows] == [
            (bob, comment, cast.owner),
            (cast.viewer, comment, cast.owner),
        ]
        # One message carries every mention of the comment.
        assert published(callbacks) == [
            ("notifications.send_comment_mention_notification", [sorted(n.pk for n in rows)])
        ]

    def test_non_members_self_and_email_addresses_are_not_notified(self, team):
        cast, bob, task = team
        comment_create(task=task, actor=cast.member, body="@outsider @member @nobody mail bob@example.com")
        assert not Notification.objects.exists()

    def test_edit_notifies_only_newly_added_mentions(self, team):
        cast, bob, task = team
        comment = comment_create(task=task, actor=cast.owner, body="@bob look")
        comment_update(comment=comment, actor=cast.owner, body="@bob look, and @admin too")
        assert sorted(Notification.objects.values_list("recipient__username", flat=True)) == ["Bob", "admin"]

    def test_removing_and_re_adding_a_mention_does_not_notify_twice(self, team):
        cast, bob, task = team
        comment = comment_create(task=task, actor=cast.owner, body="@bob look")
        comment_update(comment=comment, actor=cast.owner, body="look")
        comment_update(comment=comment, actor=cast.owner, body="look @Bob")
        assert Notification.objects.filter(recipient=bob).count() == 1

    def test_preferences_apply_to_mentions(self, team):
        cast, bob, task = team
        services.preferences_update(user=bob, changes={"mentioned": {"in_app": False, "email": False}})
        comment_create(task=task, actor=cast.owner, body="@bob @admin")
        assert list(Notification.objects.values_list("recipient__username", flat=True)) == ["admin"]


class TestPreferencesService:
    def test_update_keeps_unmentioned_channel(self, cast):
        services.preferences_update(user=cast.member, changes={"assigned": {"email": False}})
        row = NotificationPreference.objects.get(user=cast.member, kind="assigned")
        assert (row.in_app, row.email) == (True, False)
        services.preferences_update(user=cast.member, changes={"assigned": {"in_app": False}})
        row.refresh_from_db()
        assert (row.in_app, row.email) == (False, False)


def test_process_pending_reminders_queues_the_reminders_task(django_capture_on_commit_callbacks, db):
    from django.db import transaction

    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            services.NotificationService.process_pending_reminders()
    assert published(callbacks) == [("reminders.send_reminder_notifications", [])]
