import asyncio
import email
import email.policy
import threading

from aiosmtpd.controller import Controller

from tests.support.net import free_port


class Inbox:
    """Collects what the SMTP server receives; messages are parsed email.message.EmailMessage objects.
    `delay` seconds per message (0 by default) makes a slow server."""

    def __init__(self, delay=0.0):
        self.delay = delay
        self.messages = []
        self.envelopes = []
        self.sessions = set()  # one per SMTP connection that delivered mail
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.sessions.add(session)
            self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 Message accepted for delivery"


class SMTPServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port. Not started: call .start()."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.inbox = Inbox()
        self._controller = None

    def start(self):
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
