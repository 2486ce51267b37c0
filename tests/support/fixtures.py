"""Fixtures over tests/support, registered for every suite by the root conftest.py (`pytest_plugins`)."""

import shutil
import subprocess

import pytest

from tests.support.http import Receiver
from tests.support.smtp import SMTPServer


@pytest.fixture
def receiver():
    """A real HTTP receiver on 127.0.0.1 (tests.support.Receiver)."""
    with Receiver() as r:
        yield r


@pytest.fixture
def canary():
    """A server on 127.0.0.1 that must never be reached by SSRF-guarded code."""
    with Receiver() as r:
        yield r


def make_cert(directory, name):
    """A self-signed certificate for DNS name `name` (openssl CLI). Returns (certfile, keyfile)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


@pytest.fixture
def tls_receiver(tmp_path):
    """tls_receiver(cert_name) -> an HTTPS receiver on 127.0.0.1 whose certificate names `cert_name`."""
    made = []

    def make(cert_name):
        cert, key = make_cert(tmp_path, cert_name)
        r = Receiver(tls=(cert, key))
        r.certfile = cert  # self-signed: trust it as the CA
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def smtp_server(settings):
    """An SMTP server on a free port, with Django's SMTP backend pointed at it. Not started: call .start()."""
    server = SMTPServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()
