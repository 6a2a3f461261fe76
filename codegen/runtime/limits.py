"""Limits and timeouts of the workflow side, in one place (not part of generated code)."""

from datetime import timedelta

# Fan-outs run inline while they stay below this many activities; wider ones go to
# chunked child workflows so that no history grows past Temporal's limits.
INLINE_ACTIVITY_LIMIT = 1000
# Activities per child workflow (each costs ~4 history events).
CHUNK_ACTIVITY_LIMIT = 1000
# Splits of one foreach in flight at once in one workflow, whatever max_workers says:
# Temporal refuses more than 2,000 pending activities per workflow.
MAX_PENDING_ACTIVITIES = 500
# Child workflows of one foreach in flight at once.
CHILD_PARALLELISM = 2
# Events one history may get from inline fan-outs: Temporal warns past 10,240 events
# and fails a run at 51,200. A fan-out that does not fit (counting the history so far
# and the inline fan-outs still running, e.g. sibling splits of an outer foreach)
# runs in chunk child workflows even when it is narrower than INLINE_ACTIVITY_LIMIT.
HISTORY_EVENT_BUDGET = 9000
# Most history events one fan-out activity adds: scheduled, started, completed, and
# the workflow task its completion triggers.
EVENTS_PER_ACTIVITY = 6
# Widest foreach a run allows (Metaflow's --max-num-splits guard). `python flow.py run`
# defaults to 100 and Metaflow's orchestrators do not check; runs here allow 10,000
# (the width this runtime is tested at) unless RunOptions/`trigger` say otherwise.
MAX_NUM_SPLITS = 10000
# History length at which a loop hands over to a child workflow / continues as new.
LOOP_HISTORY_LIMIT = 8000
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
# Pauses before Temporal runs a lost attempt again: from this, doubling up to the max.
LOST_RETRY_INTERVAL = timedelta(seconds=1)
LOST_RETRY_MAX_INTERVAL = timedelta(seconds=10)
# Outer deadline for a step without @timeout.
DEFAULT_STEP_TIMEOUT = timedelta(days=7)
# Deadline of one try at cloning a task (a copy of its datastore entries) or at
# reading what a run left behind, for a resume.
CLONE_TIMEOUT = timedelta(minutes=10)
# Attempts of one compensation (each a Metaflow attempt of its task), its deadline.
COMPENSATION_ATTEMPTS = 3
COMPENSATION_TIMEOUT = timedelta(hours=1)
# Unwinds longer than this run in child workflows of at most CHUNK_ACTIVITY_LIMIT
# compensations each, so that no history grows past Temporal's limits.
INLINE_COMPENSATION_LIMIT = 200
