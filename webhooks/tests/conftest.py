"""Real HTTP receivers on 127.0.0.1 (http.server in a thread) and webhook factories."""

import http.server
import threading
import time

import pytest


class Receiver:
    """An HTTP server recording every request. `script` is a list of responses consumed one per request:
    (status, headers, body[, delay seconds]); when it is empty the receiver answers 200 "ok"."""

    def __init__(self, tls=None):
        self.requests = []
        self.script = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers.items()),
                                              "body": body, "at": time.time()})
                    status, headers, text, *rest = receiver.script.pop(0) if receiver.script else (200, {}, "ok")
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                if rest and rest[0]:
                    time.sleep(rest[0])
                with receiver.lock:
                    receiver.in_flight -= 1
                data = text.encode() if isinstance(text, str) else text
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:  # (certfile, keyfile)
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook", host="127.0.0.1", scheme="http"):
        return f"{scheme}://{host}:{self.port}{path}"

    def respond(self, *responses):
        with self.lock:
            self.script.extend(responses)

    def wait_for(self, count, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return self.requests
            time.sleep(0.05)
        raise AssertionError(f"receiver got {len(self.requests)} requests, expected {count}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def canary():
    """A server on 127.0.0.1 that must never be reached by SSRF-guarded code."""
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fast_retries(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (1.2, 1.2)
    settings.WEBHOOK_RETRY_JITTER = 0
    return settings


def make_cert(directory, name):
    """A self-signed certificate for DNS name `name` (openssl CLI). Returns (certfile, keyfile)."""
    import shutil
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
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
