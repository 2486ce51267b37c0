from datetime import timedelta

from django.utils import timezone

from notifications import tasks
from notifications.models import Notification
from notifications.tests.factories import NotificationFactory


def test_cleanup_deletes_only_what_it_should(cast, settings):
    settings.NOTIFICATIONS_CLEANUP_BATCH = 2  # several batches
    now = timezone.now()

    def days(d):
        return now - timedelta(days=d)

    def make(text, age, **kw):
        return NotificationFactory(recipient=cast.member, text=text, created_at=days(age), **kw)

    doomed = [
        make("read 31d", 31, read_at=days(30)),
        make("read 60d", 60, read_at=days(59)),
        make("read 40d", 40, read_at=days(1)),
        make("email-only sent 31d", 31, show_in_app=False, email_state="sent"),
        make("email-only failed 45d", 45, show_in_app=False, email_state="failed"),
        make("unread 181d", 181),
        make("pending 200d", 200, email_state="pending"),
    ]
    kept = [
        make("read 29d", 29, read_at=days(1)),
        make("unread 31d", 31),
        make("unread 179d", 179),
        make("email-only pending 31d", 31, show_in_app=False, email_state="pending"),
        NotificationFactory(recipient=cast.admin, text="fresh read", read_at=now),
    ]
    result = tasks.cleanup_expired_notifications()
    assert result == {"read": 5, "expired": 2}
    assert set(Notification.objects.values_list("pk", flat=True)) == {n.pk for n in kept}
    assert tasks.cleanup_expired_notifications() == {"read": 0, "expired": 0}
    assert len(doomed) == 7


def test_retention_settings_are_honoured(cast, settings):
    settings.NOTIFICATIONS_READ_RETENTION_DAYS = 7
    settings.NOTIFICATIONS_HARD_RETENTION_DAYS = 20
    now = timezone.now()
    NotificationFactory(recipient=cast.member, created_at=now - timedelta(days=8), read_at=now)
    NotificationFactory(recipient=cast.member, created_at=now - timedelta(days=21))
    keep = NotificationFactory(recipient=cast.member, created_at=now - timedelta(days=8))
    assert tasks.cleanup_expired_notifications() == {"read": 1, "expired": 1}
    assert list(Notification.objects.values_list("pk", flat=True)) == [keep.pk]
