from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RecsiteConfig(AppConfig):
    """The project's own app: holds cross-app concerns with no models (staff roles, recsite/roles.py)."""

    name = "recsite"
    verbose_name = "RecSite"

    def ready(self) -> None:
        from recsite.roles import roles_post_migrate

        # Sent once for this app after every migrate; "recsite" is listed last in INSTALLED_APPS, so the
        # other apps' permissions exist by then.
        post_migrate.connect(roles_post_migrate, sender=self, dispatch_uid="recsite.roles_sync")
