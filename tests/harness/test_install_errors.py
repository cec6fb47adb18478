"""Every install error is an ``InstallError`` with an ``ErrorKind``: one ``except`` catches
them all, and a kind still compares and prints as its word."""

from __future__ import annotations

import pytest

from compat.harness.errors import ErrorKind, InstallError
from compat.harness.install.index import IndexUnreachable
from compat.harness.install.nightly import NightlyNotFound
from compat.harness.install.resolve import ResolutionFailed
from compat.harness.install.uv_cli import InstallFailed, _classify_uv_error


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (InstallFailed("no-interpreter", "no CPython 3.9"), ErrorKind.NO_INTERPRETER),
        (ResolutionFailed(ErrorKind.NO_SUCH_VERSION, "no 2.99"), ErrorKind.NO_SUCH_VERSION),
        (IndexUnreachable("https://x/simple: ConnectionError"), ErrorKind.INDEX_UNREACHABLE),
        (NightlyNotFound("no nightly dated 2020-01-01"), ErrorKind.NO_SUCH_VERSION),
    ],
)
def test_each_install_error_is_one_kind_of_install_error(
    error: InstallError, kind: ErrorKind
) -> None:
    with pytest.raises(InstallError) as caught:
        raise error
    assert caught.value.kind is kind
    assert str(caught.value) == caught.value.message


def test_a_kind_is_its_word() -> None:
    kind = InstallFailed("no-interpreter", "m").kind
    assert kind == "no-interpreter"
    assert f"{kind}: m" == "no-interpreter: m"
    assert str(kind) == "no-interpreter"
    assert f"{kind:>16}" == "  no-interpreter"


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="no-such-kind"):
        InstallFailed("no-such-kind", "m")


def test_a_nightly_not_found_is_still_a_lookup_error() -> None:
    assert isinstance(NightlyNotFound("x"), LookupError)


@pytest.mark.parametrize(
    ("uv_says", "kind"),
    [
        ("error: No space left on device (os error 28)", ErrorKind.DISK_FULL),
        ("Because there is no version of torch==9.9", ErrorKind.NO_SUCH_VERSION),
        ("error: Failed to fetch https://x (dns error)", ErrorKind.INDEX_UNREACHABLE),
        ("error: something else", ErrorKind.INSTALL_ERROR),
    ],
)
def test_uvs_failures_are_error_kinds(uv_says: str, kind: ErrorKind) -> None:
    assert _classify_uv_error(uv_says)[0] is kind
