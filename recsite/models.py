"""No models: this module exists so that Django sends post_migrate for the recsite app (roles sync)."""
