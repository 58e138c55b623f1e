from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("autosend/", include("autosend_queue.urls")),
    path("signup/", include("tests.signup_views")),
]
