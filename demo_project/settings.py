"""Settings for the demo project, read from the environment and ``.env`` with django-environ.

The defaults point at ``manage.py autosend_devserver`` (the local QStash and AutoSend sandbox)
with the public dev credentials, so ``make demo`` needs no account and no network.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / "demo_project" / ".env")

SECRET_KEY = env("DJANGO_SECRET_KEY", default="demo-only-not-secret")
DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "demo_project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # QStash's callbacks write while the request that published is still recording its answer:
    # take SQLite's write lock up front, so a writer waits instead of failing "database is locked".
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "autosend_queue",
    "demo_project",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "demo_project" / "templates"],
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
LOGIN_REDIRECT_URL = "/"
DEMO_INBOX_URL = env("DEMO_INBOX_URL", default="http://127.0.0.1:8081/")

AUTOSEND_QUEUE = {
    "API_KEY": env("AUTOSEND_API_KEY", default="AS_demo_key"),
    "API_URL": env("AUTOSEND_API_URL", default="http://127.0.0.1:8081/v1"),
    "DEFAULT_FROM": env("AUTOSEND_DEFAULT_FROM", default="Demo <hello@demo.example>"),
    "QSTASH_TOKEN": env(
        "QSTASH_TOKEN",
        default="eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=",
    ),
    "QSTASH_URL": env("QSTASH_URL", default="http://127.0.0.1:8080"),
    "QSTASH_CURRENT_SIGNING_KEY": env(
        "QSTASH_CURRENT_SIGNING_KEY", default="sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"
    ),
    "QSTASH_NEXT_SIGNING_KEY": env(
        "QSTASH_NEXT_SIGNING_KEY", default="sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs"
    ),
    "PUBLIC_URL": env("PUBLIC_URL", default="http://127.0.0.1:8000"),
    "WEBHOOK_SECRET": env("AUTOSEND_WEBHOOK_SECRET", default="whsec_demo_secret"),
    "TRANSPORT": env("AUTOSEND_TRANSPORT", default="qstash"),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"autosend_queue": {"handlers": ["console"], "level": "INFO"}},
}
