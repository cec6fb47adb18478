"""The same basename as suite_any's, and no __init__.py: one process per file keeps both."""


def test_here():
    pass
