"""Imported by relative_flow.py through PYTHONPATH=lib (relative to the launch dir)."""


def shout(words):
    return [w.upper() + "!" for w in words]
