from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    # the support console lives under /admin/ but before the admin site, whose catch-all would shadow it
    path("admin/support/", include("recommender.support.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("catalog.api.urls")),
    path("api/v1/", include("recommender.api.urls")),
    path("api/v1/", include("experiments.api_urls")),
    path("", include("recommender.urls")),
    path("", include("catalog.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
