"""Recurring tasks (README "Recurring tasks").

- rules.py:     the pure, DST-correct Schedule of one RRULE (no database)
- templates.py: template writes: create / update / changed / apply / pause / resume / delete
- engine.py:    generation: due templates, planning, the batched insert, one instance, cleanup
- service.py:   RecurrenceService, the spec's entry point over the functions above

Rules:
- a template generates one normal Task per occurrence; (template, occurrence_at) is unique;
- creating or resuming a template starts at the first occurrence at or after now (no back-fill);
  occurrences missed while enabled (downtime) are caught up per `catch_up`, capped;
- template changes reach future (occurrence_at > now), not-started (todo) instances, except the
  fields a user edited on the instance (Task.edited_fields).
"""
