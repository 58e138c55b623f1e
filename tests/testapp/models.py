"""A custom user model, so the suite proves the app works without ``auth.User``."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    email = models.EmailField("email address", blank=True)
    display_name = models.CharField(max_length=100, blank=True)
