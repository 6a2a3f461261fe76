"""A local module the fork probe flow imports: its state must be fresh in every task."""

import random

# drawn when the module is imported: differs per task when every task imports it anew
DRAWN_AT_IMPORT = random.random()
CALLS = 0


def bump() -> int:
    """Count calls in this process (1 in every task when the module is fresh)."""
    global CALLS
    CALLS += 1
    return CALLS
