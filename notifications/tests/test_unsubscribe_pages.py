"""Pages a person opens from an email: RFC 8058 unsubscribe (GET confirms, POST acts), the task link and
the preferences link (configurable URL templates; the defaults are HTML pages of the app)."""

import pytest
from django.core import mail
from django.test import Client

from notifications import services, tasks
from notifications.models import NotificationPreference
from tasks_app.tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


def _path(url):
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def _unsubscribe_path(user, kind="assigned"):
    return _path(services.unsubscribe_url(user_id=user.pk, kind=kind))


def _mail_client():
    """What a mail client or a link scanner is: no cookies, no CSRF token."""
    return Client(enforce_csrf_checks=True)


class TestUnsubscribe:
    @pytest.mark.parametrize("method", ["get", "head"])
    def test_opening_the_link_changes_nothing_and_shows_a_confirmation_page(self, cast, method):
        r = getattr(_mail_client(), method)(_unsubscribe_path(cast.member))
        assert r.status_code == 200
        assert r["Content-Type"].startswith("text/html")
        if method == "get":
            page = r.content.decode()
            assert '<form method="post"' in page and "<button" in page and "Unsubscribe" in page
            assert "assigned to a task" in page
        assert not NotificationPreference.objects.exists()
        assert services.notification_create(recipient=cast.member, kind="assigned", text="x").email_state == "pending"

    def test_rfc8058_one_click_post_unsubscribes_and_answers_a_readable_page(self, cast):
        r = _mail_client().post(
            _unsubscribe_path(cast.member, "mentioned"),
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
        assert r.status_code == 200 and r["Content-Type"].startswith("text/html")
        assert "You are unsubscribed" in r.content.decode()
        assert NotificationPreference.objects.get(user=cast.member, kind="mentioned").email is False
        assert NotificationPreference.objects.get(user=cast.member, kind="mentioned").in_app is True

    def test_the_confirmation_button_posts_back_to_the_same_url(self, cast):
        client = _mail_client()
        path = _unsubscribe_path(cast.member)
        page = client.get(path).content.decode()
        assert 'action=""' in page  # the form posts to the page's own URL (the token)
        assert 'name="List-Unsubscribe" value="One-Click"' in page
        assert client.post(path, {"List-Unsubscribe": "One-Click"}).status_code == 200
        assert services.notification_create(recipient=cast.member, kind="assigned", text="x").email_state == "skipped"

    @pytest.mark.parametrize("method", ["get", "post"])
    def test_tampered_or_foreign_token_is_a_400_page_and_changes_nothing(self, cast, method):
        from django.core import signing

        tampered = _unsubscribe_path(cast.member)[:-3] + "xx/"
        foreign = f"/unsubscribe/{signing.dumps({'u': cast.member.pk, 'k': 'assigned'})}/"  # default salt
        for path in (tampered, foreign):
            r = getattr(_mail_client(), method)(path)
            assert r.status_code == 400 and r["Content-Type"].startswith("text/html")
            assert "does not work" in r.content.decode()
        assert not NotificationPreference.objects.exists()

    def test_email_headers_and_footer_use_the_same_page(self, cast, settings):
        settings.SITE_URL = "https://tm.example.org"
        n = services.notification_create(recipient=cast.member, kind="assigned", text="hello")
        tasks.send_email_notification(n.pk)
        [msg] = mail.outbox
        url = msg.extra_headers["List-Unsubscribe"].strip("<>")
        assert msg.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert url.startswith("https://tm.example.org/unsubscribe/") and "/api/" not in url
        assert url in msg.body and url in msg.alternatives[0][0]
        assert _mail_client().get(_path(url)).status_code == 200


class TestLinks:
    def test_default_task_and_preferences_links_are_html_pages_after_login(self, cast, settings):
        settings.SITE_URL = "http://testserver"
        task = TaskFactory(project=cast.project, title="Write the <docs>", assignee=cast.member)
        n = services.notification_create(recipient=cast.member, kind="assigned", text="hi", task=task)
        tasks.send_email_notification(n.pk)
        [msg] = mail.outbox
        task_link = f"http://testserver/tasks/{task.pk}/"
        prefs_link = "http://testserver/notifications/preferences/"
        assert task_link in msg.body and prefs_link in msg.body
        assert "/api/" not in msg.body.replace(msg.extra_headers["List-Unsubscribe"], "")

        browser = Client()
        r = browser.get(_path(task_link))
        assert r.status_code == 302 and r["Location"].startswith("/api-auth/login/?next=")
        browser.force_login(cast.member)
        r = browser.get(_path(task_link))
        assert r.status_code == 200 and r["Content-Type"].startswith("text/html")
        assert "Write the &lt;docs&gt;" in r.content.decode()
        assert browser.get(_path(prefs_link)).status_code == 200

    def test_task_page_is_404_for_someone_who_cannot_see_the_task(self, cast):
        task = TaskFactory(project=cast.project)
        browser = Client()
        browser.force_login(cast.outsider)
        assert browser.get(f"/tasks/{task.pk}/").status_code == 404

    def test_links_follow_the_deployers_url_templates(self, cast, settings):
        settings.SITE_URL = "https://api.example.org"
        settings.NOTIFICATIONS_TASK_URL = "https://app.example.org/p/{project_id}/t/{task_id}"
        settings.NOTIFICATIONS_PREFERENCES_URL = "{site_url}/../settings/notifications"
        task = TaskFactory(project=cast.project)
        n = services.notification_create(recipient=cast.member, kind="assigned", text="hi", task=task)
        tasks.send_email_notification(n.pk)
        [msg] = mail.outbox
        assert f"https://app.example.org/p/{cast.project.pk}/t/{task.pk}" in msg.body
        assert "https://api.example.org/../settings/notifications" in msg.body


class TestPreferencesPage:
    def test_a_person_changes_preferences_with_the_form(self, cast):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(cast.member)
        page = browser.get("/notifications/preferences/")
        assert page.status_code == 200
        html = page.content.decode()
        assert 'name="assigned.email"' in html and "csrfmiddlewaretoken" in html
        token = browser.cookies["csrftoken"].value
        form = {"csrfmiddlewaretoken": token, "assigned.in_app": "on", "mentioned.email": "on"}
        r = browser.post("/notifications/preferences/", form)
        assert r.status_code == 200 and "Saved." in r.content.decode()
        prefs = {p.kind: (p.in_app, p.email) for p in NotificationPreference.objects.filter(user=cast.member)}
        assert prefs["assigned"] == (True, False) and prefs["mentioned"] == (False, True)

    def test_the_form_refuses_a_post_without_csrf_token(self, cast):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(cast.member)
        assert browser.post("/notifications/preferences/", {"assigned.email": "on"}).status_code == 403
        assert not NotificationPreference.objects.exists()
