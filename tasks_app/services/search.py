"""Full-text search over a task's title, description and comments.

PostgreSQL: `Task.search_vector` (tsvector, GIN-indexed) holds title (weight A), description (B)
and the comments (C) in the TASK_SEARCH_LANGUAGE configuration. The services refresh it in the same
transaction as every change to those texts (one UPDATE). Queries are ranked (ts_rank) and every
word is a prefix match (`plan` finds `planning`), for as-you-type search.
SQLite: no index; `search` matches each word case-insensitively as a substring of the title,
the description or any comment (all words must match). Fine for development-sized data.
PostgreSQL falls back to that substring match when the words make an empty tsquery (only stop
words, e.g. `the` or `a an`, or `_`): full-text search would find nothing at all, while a user
who types `the` expects the tasks that contain it. That fallback reads no index (a scan of the
visible tasks), like SQLite's; a query with at least one searchable word stays full-text (its
stop words are dropped, as before).
"""

import re

from django.db import connection

from tasks_app import conf

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_WORDS = 8


def search_words(text):
    return _WORD.findall(text or "")[:MAX_WORDS]


def uses_postgres():
    return connection.vendor == "postgresql"


def search_reindex(*, task_ids):
    """Recompute the tasks' search documents (no-op on SQLite). Call it inside the change's transaction."""
    task_ids = list(task_ids)
    if not task_ids or not uses_postgres():
        return
    config = conf.TASK_SEARCH_LANGUAGE
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE tasks_app_task t SET search_vector =
                setweight(to_tsvector(%s::regconfig, coalesce(t.title, '')), 'A')
                || setweight(to_tsvector(%s::regconfig, coalesce(t.description, '')), 'B')
                || setweight(to_tsvector(%s::regconfig, coalesce(
                    (SELECT string_agg(c.body, ' ') FROM tasks_app_comment c WHERE c.task_id = t.id), '')), 'C')
            WHERE t.id = ANY(%s)
            """,
            [config, config, config, task_ids],
        )


def search_tsquery(words):
    """The raw tsquery text of the words: all of them, each a prefix (`plan` finds `planning`)."""
    return " & ".join(f"'{w}':*" for w in words)


def search_tsquery_is_empty(words):
    """PostgreSQL: whether the words' tsquery keeps no lexeme (stop words only) in TASK_SEARCH_LANGUAGE.

    One query that reads no table (a few microseconds on the server), so the list pays one round trip.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT numnode(to_tsquery(%s::regconfig, %s)) = 0", [conf.TASK_SEARCH_LANGUAGE, search_tsquery(words)]
        )
        return cursor.fetchone()[0]
