"""Shared code of the mlproject pipelines: base flow, settings, config parsing."""
