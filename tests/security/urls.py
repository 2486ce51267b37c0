"""The project's URLs with the JSON 404 handler (until taskmgmt/urls.py sets `handler404` itself)."""

from taskmgmt.urls import urlpatterns  # noqa: F401

handler404 = "core.exceptions.json_not_found"
