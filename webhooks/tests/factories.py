import factory

from tasks_app.tests.factories import ProjectFactory
from webhooks import signing
from webhooks.models import Event, WebhookDelivery, WebhookSubscription


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookSubscription

    project = factory.SubFactory(ProjectFactory)
    url = "http://127.0.0.1:9/hook"
    events = factory.LazyFunction(lambda: list(Event.values))
    secret = factory.LazyFunction(signing.generate_secret)


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    subscription = factory.SubFactory(SubscriptionFactory)
    event_type = Event.TASK_CREATED
    body = '{"type":"task.created","timestamp":"2026-01-01T00:00:00+00:00","data":{}}'
