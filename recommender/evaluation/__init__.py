"""Offline evaluation: importers (public dataset formats) -> protocols (splits) -> runner (tune, fit, score)
-> metrics. Pure Python; no Django imports. See runner.py for the API the engines plug into."""
