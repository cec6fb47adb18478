"""Imports a module the cells do not install, as upstream's common_utils needs expecttest."""

import expecttest  # noqa: F401


def test_never_collected():
    pass
