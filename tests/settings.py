"""Settings for the test suite: SQLite in memory, or PostgreSQL when DATABASE_URL is set."""

import os
import tempfile
from pathlib import Path

import environ

env = environ.Env()

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
AUTH_USER_MODEL = "testapp.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {"default": env.db("DATABASE_URL", default="sqlite://:memory:")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory: Django shares an in-memory database's one connection with the live
    # server's thread, and the end-to-end tests' callbacks would then use the test's connection
    # at the same time as the test. SQLite's write lock is taken up front so writers wait.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"autosend-queue-tests-{os.getpid()}.sqlite3")
    }
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL;",
    }

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "tests.testapp",
    "autosend_queue",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

AUTOSEND_QUEUE = {
    "API_KEY": "AS_test_key",
    "DEFAULT_FROM": "Team <team@example.com>",
    "QSTASH_TOKEN": "qstash-test-token",
    "QSTASH_URL": "https://qstash.test",
    "QSTASH_CURRENT_SIGNING_KEY": "sig_current_test_key",
    "QSTASH_NEXT_SIGNING_KEY": "sig_next_test_key",
    "PUBLIC_URL": "https://app.example.com",
    "WEBHOOK_SECRET": "whsec_test_secret",
    "TRANSPORT": "locmem",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"autosend_queue": {"handlers": ["null"], "level": "INFO", "propagate": True}},
}
