from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"
    verbose_name = "Recommendations"

    def ready(self) -> None:
        # Widget / rule saves clear the serving memos and bump the widget generation other processes poll:
        # the signal handlers must be connected in every process that can save a widget (admin, commands).
        from .serving import widgets  # noqa: F401
