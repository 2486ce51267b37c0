"""State read at scrape time (web /metrics only): queue depths, outbox backlog and age, beat."""

import logging
import time

from django.conf import settings
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)


class StateCollector:
    def collect(self):
        from core import outbox
        from core import redis as core_redis
        from core.beat import beat_instances, last_beat_tick

        up = GaugeMetricFamily("taskmgmt_ops_collector_up", "1 if the scrape-time reads below all succeeded.")
        ok = True
        depth = GaugeMetricFamily("taskmgmt_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"])
        try:
            r = core_redis.client()
            for name in settings.QUEUE_NAMES:
                depth.add_metric([name], r.llen(name))
            unacked = GaugeMetricFamily("taskmgmt_queue_unacked", "Messages taken by workers, not yet acked.")
            unacked.add_metric([], r.hlen("unacked"))
            yield depth
            yield unacked
        except Exception as exc:
            ok = False
            logger.warning("metrics: broker unreachable (%s)", type(exc).__name__)

        backlog = GaugeMetricFamily(
            "taskmgmt_outbox_pending", "Pending side-effect rows per outbox.", labels=["outbox"]
        )
        age = GaugeMetricFamily(
            "taskmgmt_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending row per outbox (0 when none).",
            labels=["outbox"],
        )
        now = timezone.now()
        try:
            for name, box in sorted(outbox.registered().items()):
                qs = box.queryset()
                backlog.add_metric([name], qs.count())
                oldest = qs.order_by(box.published).values_list(box.published, flat=True).first()
                age.add_metric([name], (now - oldest).total_seconds() if oldest else 0.0)
            yield backlog
            yield age
        except Exception as exc:
            ok = False
            logger.warning("metrics: outbox read failed (%s)", type(exc).__name__)

        try:
            tick = last_beat_tick()
            tick_age = GaugeMetricFamily(
                "taskmgmt_beat_last_tick_age_seconds", "Seconds since the leading beat's last tick (+Inf: never)."
            )
            tick_age.add_metric([], time.time() - tick if tick else float("inf"))
            yield tick_age
            instances, leader = beat_instances()
            beats = GaugeMetricFamily(
                "taskmgmt_beat_leader", "1 for the beat that holds the leader lock, 0 for standbys.", labels=["beat"]
            )
            for name, info in sorted(instances.items()):
                beats.add_metric([name], 1.0 if name == leader and info["role"] == "leader" else 0.0)
            yield beats
        except Exception as exc:
            ok = False
            logger.warning("metrics: beat state unreadable (%s)", type(exc).__name__)
        up.add_metric([], 1.0 if ok else 0.0)
        yield up


state_registry = CollectorRegistry(auto_describe=False)
state_registry.register(StateCollector())
