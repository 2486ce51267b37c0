"""The one place for test helpers: polling, ports, stopping processes, an HTTP receiver and an SMTP server.

    from tests.support import Receiver, free_port, stop_process, wait_until

Every suite (app tests, tests/faults, tests/security, tests/browser) and the integration flows
(`<app>/itest.py`) use these; add a helper here rather than copying one into a conftest.
"""

from tests.support.http import Receiver
from tests.support.net import free_port, port_open
from tests.support.processes import stop_process
from tests.support.smtp import SMTPServer
from tests.support.waiting import wait_until

__all__ = ["Receiver", "SMTPServer", "free_port", "port_open", "stop_process", "wait_until"]
