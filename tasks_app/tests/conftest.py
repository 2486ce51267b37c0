from notifications.tests.conftest import smtp_server  # noqa: F401  (a real aiosmtpd server for email flows)
