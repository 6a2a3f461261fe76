"""A local module of the code-package test flow (the test rewrites VERSION)."""

VERSION = "v1"


def area(side):
    return side * side
