from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        # Experiments change serving through this hook; recommender never imports experiments.
        from recommender.serving.hooks import serving_hook_register

        from .serving import ExperimentServingHook

        serving_hook_register(ExperimentServingHook())
