import collections
import http.server
import sys
import threading
import time

from tests.support.waiting import wait_until


class Receiver:
    """A real HTTP server on 127.0.0.1 (ThreadingHTTPServer in a thread of this process) recording every request.

    Each recorded request is a dict: path, headers, body, at (time.time()), webhook_id (the `webhook-id`
    header, "" if none) and n (how many requests carried that webhook-id so far, 1-based).

    What it answers, first rule that applies:
    1. a scripted response queued with respond((status, headers, body[, delay seconds]), ...), one per request;
    2. answer(request) -> (status, delay seconds), if given;
    3. otherwise `self.status` after `self.delay` seconds with body "ok" (both may be changed while it runs).

    tls=(certfile, keyfile) serves HTTPS. Use as a context manager, or call close().
    """

    def __init__(self, *, status=200, delay=0.0, answer=None, tls=None):
        self.status, self.delay, self.answer = status, delay, answer
        self.requests = []
        self.hits = collections.Counter()
        self.script = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.scheme = "https" if tls else "http"
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        if tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook", host="127.0.0.1", scheme=None):
        return f"{scheme or self.scheme}://{host}:{self.port}{path}"

    def respond(self, *responses):
        """Queue responses (status, headers, body[, delay]) for the next requests, in order."""
        with self.lock:
            self.script.extend(responses)

    def wait_for(self, count, timeout=20):
        """Wait until at least `count` requests arrived; returns the recorded requests."""
        wait_until(lambda: len(self.requests) >= count, f"{count} requests at the receiver", timeout=timeout, step=0.05)
        return self.requests

    def unique(self):
        """How many distinct webhook-ids arrived."""
        with self.lock:
            return len(self.hits)

    def total(self):
        with self.lock:
            return len(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _record(self, handler, body):
        webhook_id = handler.headers.get("webhook-id", "")
        with self.lock:
            self.hits[webhook_id] += 1
            request = {
                "path": handler.path,
                "headers": dict(handler.headers.items()),
                "body": body,
                "at": time.time(),
                "webhook_id": webhook_id,
                "n": self.hits[webhook_id],
            }
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            scripted = self.script.pop(0) if self.script else None
        if scripted is not None:
            status, headers, text, *rest = scripted
            return status, headers, text, rest[0] if rest else 0
        if self.answer is not None:
            status, delay = self.answer(request)
            return status, {}, "ok", delay
        return self.status, {}, "ok", self.delay


def _handler(receiver):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, headers, text, delay = receiver._record(self, body)
            try:
                if delay:
                    time.sleep(delay)
                data = text.encode() if isinstance(text, str) else text
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender timed out and hung up
            finally:
                with receiver.lock:
                    receiver.in_flight -= 1

        do_GET = do_PUT = do_POST

        def log_message(self, *args):
            pass

    return Handler


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # bursts of deliveries from several worker threads at once

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a killed sender resets its connections
            super().handle_error(request, client_address)
