"""Board order: a lexicographic rank per task within its (project, status) column.

Ranks are strings over [0-9a-z] compared character by character (the same order in PostgreSQL's
default collations and SQLite's BINARY for this alphabet). Moving a card writes one row: its new
rank sits between its two neighbours'. Ranks never end in '0', so there is always room below a
rank. Ranks grow by about one character per ~5 inserts at the same spot; past REBALANCE_LENGTH a
background task (`tasks.rebalance_positions`) spreads the column's ranks evenly again. Losing that
message is harmless: ranks stay correct, only longer, and the next long rank enqueues it again.

New cards (API creates, status changes, recurring instances) go to the END of their column, like a
new card in Trello, Plane, Linear's manual order or Todoist. Appending does not bisect towards the
end (which grows a character every ~6 appends: ~770 new tasks in one column would pass the column's
128 characters): `rank_after` adds one unit of the APPEND_DIGITS-th digit to the last rank, so an
append is at most APPEND_DIGITS characters long (and shortens a long last rank), for ~840,000
appends to an empty column before it falls back to bisecting.
"""

from django.db import transaction
from django.db.models import OuterRef, Subquery

from core.enqueue import enqueue_on_commit
from core.exceptions import ApplicationError
from tasks_app.models import Project, Task

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
BASE = len(ALPHABET)
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
REBALANCE_LENGTH = 24
APPEND_DIGITS = 4


def rank_between(lo, hi):
    """A rank strictly between lo ('' = start of the column) and hi (None = end of the column)."""
    lo = lo or ""
    if hi is not None and hi <= lo:
        raise ValueError("lo must sort before hi")
    out = []
    i = 0
    while True:
        d_lo = _INDEX[lo[i]] if i < len(lo) else 0
        d_hi = (_INDEX[hi[i]] if i < len(hi) else 0) if hi is not None else BASE
        if d_hi - d_lo > 1:
            out.append(ALPHABET[(d_lo + d_hi) // 2])
            return "".join(out)
        out.append(ALPHABET[d_lo])
        if d_hi - d_lo == 1:
            hi = None  # everything that starts with this prefix now sorts below hi
        i += 1


def evenly_spaced(n):
    """n ranks spread over the key space, in increasing order (used by rebalancing)."""
    width = 1
    while BASE**width <= (n + 1) * BASE:  # leave ~36 ranks of room between neighbours
        width += 1
    step = BASE**width // (n + 1)
    ranks = []
    for k in range(1, n + 1):
        value, digits = step * k, []
        for _ in range(width):
            value, d = divmod(value, BASE)
            digits.append(ALPHABET[d])
        ranks.append("".join(reversed(digits)).rstrip("0"))
    return ranks


def rank_after(lo):
    """A short rank after lo ('' = empty column: the middle of the key space, 'i').

    lo cut to APPEND_DIGITS digits, plus one unit of the last of them (trailing '0's dropped): always
    above lo, never longer than APPEND_DIGITS. Past 'zzzz' it bisects (rank_between) instead.
    """
    lo = lo or ""
    if not lo:
        return rank_between("", None)
    value = 0
    for c in lo[:APPEND_DIGITS].ljust(APPEND_DIGITS, "0"):
        value = value * BASE + _INDEX[c]
    value += 1
    if value >= BASE**APPEND_DIGITS:
        return rank_between(lo, None)
    digits = []
    for _ in range(APPEND_DIGITS):
        value, d = divmod(value, BASE)
        digits.append(ALPHABET[d])
    return "".join(reversed(digits)).rstrip("0")


def _last_rank_query(*, project_id, status, exclude_id=None):
    qs = Task.objects.filter(project_id=project_id, status=status)
    if exclude_id:
        qs = qs.exclude(pk=exclude_id)
    return qs.order_by("-position").values("position")[:1]  # the (project, status, position) index, backwards


def position_at_end(*, project_id, status, exclude_id=None):
    last = _last_rank_query(project_id=project_id, status=status, exclude_id=exclude_id).first()
    return rank_after(last["position"] if last else "")


def positions_assign_at_end(tasks):
    """Set `position` on new (unsaved) tasks so that they land at the end of their (project, status)
    column, in the order given. For batched inserts (recurring instances): one query per distinct
    status (one index probe per project), whatever the number of tasks. Queues a rebalance of any
    column whose new last rank is long (only after ~840,000 appends, or a column of very long ranks)."""
    last = {}
    for status in {t.status for t in tasks}:
        project_ids = {t.project_id for t in tasks if t.status == status}
        rows = Project.objects.filter(pk__in=project_ids).values_list(
            "pk", Subquery(_last_rank_query(project_id=OuterRef("pk"), status=status))
        )
        last.update({(pk, status): rank or "" for pk, rank in rows})
    for task in tasks:
        key = (task.project_id, task.status)
        task.position = last[key] = rank_after(last.get(key, ""))
    for (project_id, status), rank in last.items():
        if len(rank) > REBALANCE_LENGTH:
            enqueue_on_commit("tasks.rebalance_positions", args=(project_id, status))


def _neighbour(task, neighbour_id, name):
    if neighbour_id is None:
        return None
    row = Task.objects.filter(pk=neighbour_id).values("project_id", "status", "position").first()
    if row is None or row["project_id"] != task.project_id:  # another project's task reads as missing (no leak)
        raise ApplicationError(
            "A neighbour must be another task in the same project and status column.",
            fields={name: "No such task in this project."},
            code="does_not_exist",
        )
    if row["status"] != task.status:
        raise ApplicationError(
            "A neighbour must be another task in the same project and status column.",
            fields={name: "Not a task in the target column."},
            code="not_in_column",
        )
    if neighbour_id == task.pk:
        raise ApplicationError(
            "A task cannot be its own neighbour.", fields={name: "Cannot be the moved task."}, code="own_neighbour"
        )
    return row["position"]


def position_between(*, task, after_id=None, before_id=None):
    """The rank for `task` placed right after task `after_id` and right before `before_id` (ids or None)."""
    lo = _neighbour(task, after_id, "after")
    hi = _neighbour(task, before_id, "before")
    if lo is None and hi is None:
        return position_at_end(project_id=task.project_id, status=task.status, exclude_id=task.pk)
    column = Task.objects.filter(project_id=task.project_id, status=task.status).exclude(pk=task.pk)
    if hi is None:  # right below `after`: above the card that follows it, if any (one index probe)
        below = column.filter(position__gt=lo).order_by("position").values_list("position", flat=True).first()
        return rank_between(lo, below) if below is not None else rank_after(lo)
    if lo is None:  # right above `before`: below the card that precedes it, if any
        above = column.filter(position__lt=hi).order_by("-position").values_list("position", flat=True).first()
        return rank_between(above or "", hi)
    if lo >= hi:
        raise ApplicationError(
            "`after` must be above `before` in the column.", fields={"before": "Not below `after` in the column."}
        )
    return rank_between(lo, hi)


def position_check_length(*, task):
    if len(task.position) > REBALANCE_LENGTH:
        enqueue_on_commit("tasks.rebalance_positions", args=(task.project_id, task.status))


@transaction.atomic
def positions_rebalance(*, project_id, status):
    """Spread the column's ranks evenly, keeping the order. Idempotent; one UPDATE per changed row."""
    rows = list(
        Task.objects.select_for_update()
        .filter(project_id=project_id, status=status)
        .order_by("position", "id")
        .only("id", "position")
    )
    changed = []
    for task, rank in zip(rows, evenly_spaced(len(rows)), strict=True):
        if task.position != rank:
            task.position = rank
            changed.append(task)
    Task.objects.bulk_update(changed, ["position"], batch_size=500)
    return len(changed)
