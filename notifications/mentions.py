"""@username mentions in comment bodies.

A mention is `@` followed by username characters (Django's default: letters, digits and . + - _),
where the `@` does not follow a username character. So `bob@example.com` is not a mention, and
`@bob@example.com` is not one either (the name runs into another `@`). A trailing `.` is taken as
punctuation ("thanks @bob."). Usernames that themselves contain `@` cannot be mentioned.
Matching against project members is case-insensitive.
"""

import re

MENTION_RE = re.compile(r"(?<![\w.@+-])@([\w.+-]+)(?![\w.+@-])")


def _names(body):
    """Per mention, the lower-cased name and its form without trailing dots."""
    for match in MENTION_RE.finditer(body or ""):
        name = match.group(1).lower()
        yield name, name.rstrip(".")


def mention_candidates(body):
    """Every name worth looking up for `body`."""
    names = set()
    for raw, stripped in _names(body):
        names.update((raw, stripped))
    names.discard("")
    return names


def resolve_mentions(body, usernames):
    """The subset of `usernames` mentioned in `body`; per mention a raw match wins over the dot-stripped one."""
    by_lower = {}
    for username in usernames:
        by_lower.setdefault(username.lower(), set()).add(username)
    chosen = set()
    for raw, stripped in _names(body):
        chosen |= by_lower.get(raw) or by_lower.get(stripped) or set()
    return chosen
