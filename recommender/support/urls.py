"""/admin/support/...: the support console (included by recsite/urls.py before the admin site's own URLs)."""

from django.urls import path

from . import views

app_name = "support"

urlpatterns = [
    path("", views.lookup, name="lookup"),
    path("customer/<int:customer_id>/", views.customer, name="customer"),
    path("visitor/<str:visitor>/", views.visitor, name="visitor"),
    path("trace/<str:request_id>/", views.trace, name="trace"),
    path("model/<int:pk>/", views.model, name="model"),
    path("models/compare/", views.model_compare, name="model_compare"),
]
