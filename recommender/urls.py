from django.urls import path

from . import views

app_name = "recommender"
urlpatterns = [
    path("widgets/<slug:slug>/", views.widget_fragment, name="widget_fragment"),
]
