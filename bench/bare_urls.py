import os

from django.http import HttpResponse
from django.urls import path

BODY = open(os.environ["BENCH_BARE_BODY"], "rb").read()


def prebuilt(request):
    return HttpResponse(BODY, content_type="application/json")


urlpatterns = [path("api/v1/tasks/", prebuilt)]
