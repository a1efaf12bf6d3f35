from django.urls import path

from . import views

app_name = "catalog"
urlpatterns = [
    path("", views.home, name="home"),
    path("products/<int:pk>/image.svg", views.product_image, name="product_image"),
]
