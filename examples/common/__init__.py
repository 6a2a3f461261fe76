"""Shared building blocks for the example flows (a base flow and a decorator)."""
