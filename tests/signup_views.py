"""A minimal signup page for the tests (``/signup/``): Django's UserCreationForm on the custom user
model, saving in autocommit as most signup views do."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path


class SignupForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email", "first_name", "last_name")


def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        return HttpResponseRedirect("/welcome/")
    return HttpResponse(str(form.errors), status=400 if request.method == "POST" else 200)


urlpatterns = [path("", signup, name="signup")]
