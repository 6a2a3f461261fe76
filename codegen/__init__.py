"""Generate typed, per-flow Temporal workflow modules from Metaflow flow files."""

__version__ = "0.1.0"
