app_name = "recommender"
urlpatterns: list = []
