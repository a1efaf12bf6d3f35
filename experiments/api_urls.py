app_name = "experiments_api"
urlpatterns: list = []
