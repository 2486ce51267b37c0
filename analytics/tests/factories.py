import factory
from django.utils import timezone

from analytics.models import ExportJob
from tasks_app.tests.factories import UserFactory


class ExportJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExportJob

    requester = factory.SubFactory(UserFactory)
    format = "csv"
    fields = factory.LazyFunction(lambda: ["id", "title", "status"])
    expires_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(days=7))
