from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.health import has_ops_access


@require_GET
@never_cache
def metrics(request):
    """Prometheus exposition: this web's event metrics (all gunicorn workers in multiprocess mode) plus
    state read now. Staff or `Authorization: Bearer $OPS_TOKEN`."""
    if not settings.METRICS_ENABLED:
        raise Http404
    if not has_ops_access(request):
        return JsonResponse({"detail": "Staff or the operations token only.", "code": "permission_denied"}, status=403)
    from prometheus_client import CONTENT_TYPE_LATEST  # imported late: see ops/metrics.py

    from ops import metrics as m
    from ops.collectors import state_registry

    return HttpResponse(m.render(m.process_registry(), state_registry), content_type=CONTENT_TYPE_LATEST)
