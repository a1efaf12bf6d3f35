from django.urls import path

from .views import EventsView, HealthView

app_name = "catalog_api"
urlpatterns = [
    path("events", EventsView.as_view(), name="events"),
    path("health", HealthView.as_view(), name="health"),
]
