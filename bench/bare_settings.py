"""Settings for the bare baseline app of bench/api_tasks.py: our settings, one plain Django view."""

from taskmgmt.settings.test import *  # noqa: F403

ROOT_URLCONF = "bench.bare_urls"
