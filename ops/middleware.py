import re
import time

_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


class MetricsMiddleware:
    """HTTP requests by route (the URL pattern, not the path: bounded label values), method and status."""

    def __init__(self, get_response):
        from ops import metrics

        self.metrics = metrics
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        route = route_label(match.route) if match else "<unmatched>"
        method = request.method if request.method in KNOWN_METHODS else "OTHER"
        self.metrics.http_latency.labels(route, method).observe(time.perf_counter() - started)
        self.metrics.http_requests.labels(route, method, str(response.status_code)).inc()
        return response


KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def route_label(route):
    """`api/v1/^tasks/(?P<pk>[^/.]+)/$` -> `api/v1/tasks/<pk>/`: the same shape as path() routes."""
    return _GROUP.sub(r"<\1>", route).replace("/^", "/").removeprefix("^").replace("$", "")
