from __future__ import annotations

import pytest

from compat.harness.redact import redact


@pytest.mark.parametrize(("text", "expected"), [
    ("https://user:token@host/simple", "https://***@host/simple"),
    ("git+https://u:t@host/x and ftp://user:s3cr3t@h/simple",
     "git+https://***@host/x and ftp://***@h/simple"),
    ("index-url = 'https://tok@x.invalid/'", "index-url = 'https://***@x.invalid/'"),
    ("no url here: a@b", "no url here: a@b"),
    ("https://host/path@v1", "https://host/path@v1"),  # an @ after the host is not userinfo
    ("a" * 10_000, "a" * 10_000),
])
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected
