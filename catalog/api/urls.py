app_name = "catalog_api"
urlpatterns: list = []
