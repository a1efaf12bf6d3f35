from django.urls import path

from . import views

app_name = "catalog"
urlpatterns = [
    path("", views.home, name="home"),
    path("c/<slug:slug>/", views.category_detail, name="category"),
    path("search/", views.search, name="search"),
    path("products/<int:pk>/", views.product_detail, name="product"),
    path("products/<int:pk>/image.svg", views.product_image, name="product_image"),
    path("products/<int:pk>/add-to-cart/", views.cart_add, name="cart_add"),
    path("cart/", views.cart_detail, name="cart"),
    path("cart/<int:pk>/update/", views.cart_update, name="cart_update"),
    path("cart/<int:pk>/remove/", views.cart_remove, name="cart_remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/<int:pk>/", views.order_detail, name="order"),
    path("account/", views.account, name="account"),
    path("account/signup/", views.signup, name="signup"),
    path("account/login/", views.LoginView.as_view(), name="login"),
    path("account/logout/", views.LogoutView.as_view(), name="logout"),
]
