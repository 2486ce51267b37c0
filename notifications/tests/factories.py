import factory

from notifications.models import EmailState, Kind, Notification
from tasks_app.tests.factories import UserFactory


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    recipient = factory.SubFactory(UserFactory)
    kind = Kind.ASSIGNED
    text = factory.Sequence(lambda n: f"notification {n}")
    email_state = EmailState.SKIPPED
