app_name = "recommender_api"
urlpatterns: list = []
