"""The contract between a cell and the harness: the event stream's names and version.

The pytest plugin (inside a cell, Python 3.9+, next to any torch) writes these events as
JSON lines; the harness (on the host) reads them. Both import this leaf module and
nothing else of each other, so a renamed event is one change here, and a stream written
by a plugin of another version is refused by name instead of misread.
"""

from __future__ import annotations

__all__ = [
    "COLLECT_ERROR",
    "EVENTS_SCHEMA",
    "FILE_EXIT",
    "FILE_FINISH",
    "FILE_START",
    "SESSION_FINISH",
    "SESSION_START",
    "TEST",
    "TEST_START",
]

# Bump on any change a reader of the old version would misread; adding a key is not one.
EVENTS_SCHEMA = 1

SESSION_START = "session_start"  # schema, fingerprint (what the cell really is)
COLLECT_ERROR = "collect_error"  # nodeid, message
TEST_START = "test_start"  # nodeid: the test now running (a crash names it)
TEST = "test"  # nodeid, outcome, duration, message, reruns, exc_types, exc_message, snapshots
SESSION_FINISH = "session_finish"  # exitstatus, routes, adaptations, warnings

# One process per test file (``compat.file_runner``): the runner writes SESSION_START once
# (its fingerprint), then for each file FILE_START, the file's own pytest writes its tests
# and FILE_FINISH (in place of SESSION_FINISH), and the runner FILE_EXIT with how the
# file's process ended; SESSION_FINISH last, from the runner.
FILE_START = "file_start"  # nodeid (the file's), args
FILE_FINISH = "file_finish"  # nodeid, exitstatus, routes, adaptations, warnings (from pytest)
FILE_EXIT = "file_exit"  # nodeid, returncode, signal, timed_out, seconds (from the runner)
