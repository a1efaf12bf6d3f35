"""Admin for training runs and model versions."""
