"""Generate typed, per-flow Temporal workflow modules from Metaflow flow files."""

from .compensate import compensate

__version__ = "0.1.0"

__all__ = ["compensate"]
