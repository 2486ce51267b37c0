"""A small read-only HTML page for one task: the default target of the "open the task" link in emails
(NOTIFICATIONS_TASK_URL points it at a deployer's own front end instead). Session login first."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from core.exceptions import NotFound
from tasks_app import selectors


@login_required
@require_http_methods(["GET", "HEAD"])
def task_page(request, task_id):
    try:
        task = selectors.task_get(user=request.user, task_id=task_id)
    except NotFound:
        raise Http404("Task not found.") from None
    comments = selectors.comment_list(task=task)
    return render(request, "pages/task.html", {"task": task, "comments": comments})
