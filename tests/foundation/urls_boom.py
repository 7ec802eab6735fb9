"""A URLconf with a view that fails, for the test that 500s are logged."""

from django.urls import path


def boom(request):
    raise RuntimeError("the boom view went boom")


urlpatterns = [path("boom/", boom)]
