from django.contrib import admin
from django.urls import include, path

from demo_project.views import HomeView, SignupView

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("signup/", SignupView.as_view(), name="signup"),
    path("welcome/", HomeView.as_view(template_name="demo/welcome.html"), name="welcome"),
    path("admin/", admin.site.urls),
    path("autosend/", include("autosend_queue.urls")),
]
