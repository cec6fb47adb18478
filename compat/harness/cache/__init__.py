"""The verdict cache: a test file's verdicts in a cell, reused while its inputs are unchanged.

``key`` says what a (cell, test file) depends on, part by part; ``store`` keeps verdicts
content-addressed by that key; ``reuse`` decides per file what reruns and puts the cached
verdicts into the run. Like Bazel's action cache: an input that changed is a new key, so
a stale verdict is never found, only a miss.
"""
