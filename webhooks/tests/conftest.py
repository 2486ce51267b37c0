"""Webhook test settings. The receivers (receiver, canary, tls_receiver) are shared fixtures from tests/support."""

import pytest


@pytest.fixture
def fast_retries(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (1.2, 1.2)
    settings.WEBHOOK_RETRY_JITTER = 0
    return settings
