"""The suite's URLs plus django.contrib.auth's password-reset views, for the reset flow test."""

from django.urls import include, path

from tests.urls import urlpatterns as base_urlpatterns

urlpatterns = [*base_urlpatterns, path("accounts/", include("django.contrib.auth.urls"))]
