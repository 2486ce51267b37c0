from rest_framework.routers import SimpleRouter


class Router(SimpleRouter):
    """SimpleRouter whose detail routes match only numeric ids unless a viewset says otherwise: /tasks/abc/ is a
    404 from the URL resolver, never a lookup that reaches the database with a string."""

    def get_lookup_regex(self, viewset, lookup_prefix=""):
        if getattr(viewset, "lookup_value_regex", None) is None:
            field = getattr(viewset, "lookup_url_kwarg", None) or getattr(viewset, "lookup_field", "pk")
            return f"(?P<{lookup_prefix}{field}>[0-9]+)"
        return super().get_lookup_regex(viewset, lookup_prefix)
