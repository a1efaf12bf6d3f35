from django.urls import path

from .views import RecommendationsView

app_name = "recommender_api"
urlpatterns = [
    path("recommendations/<slug:widget_slug>", RecommendationsView.as_view(), name="recommendations"),
]
