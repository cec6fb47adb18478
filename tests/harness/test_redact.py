from __future__ import annotations

import pytest

from compat.harness.redact import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:token@host/simple", "https://***@host/simple"),
        (
            "git+https://u:t@host/x and ftp://user:s3cr3t@h/simple",
            "git+https://***@host/x and ftp://***@h/simple",
        ),
        ("index-url = 'https://tok@x.invalid/'", "index-url = 'https://***@x.invalid/'"),
        ("no url here: a@b", "no url here: a@b"),
        ("https://host/path@v1", "https://host/path@v1"),  # an @ after the host is not userinfo
        ("a" * 10_000, "a" * 10_000),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("torch[0].https://user:s3cr3t@host/", "torch[0].https://***@host/"),  # glued scheme
        ("https://user:p@ss@host/x", "https://***@host/x"),  # an "@" in the password
        ("a https://u:t@h\tb https://v:w@k", "a https://***@h\tb https://***@k"),
        ("https://***@host", "https://***@host"),  # idempotent
    ],
)
def test_redact_edges(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("size", [100_000, 5_000_000])
def test_redact_is_linear_on_long_adversarial_text(size: int) -> None:
    """What made the old pattern quadratic (100 KB of letters: 29 s; 5 MB: a hang), and
    its cousins: every one finishes (the suite has no timing assertion; a quadratic one
    would not finish at 5 MB)."""
    letters = "a" * size + "://x@"
    assert redact(letters).endswith("://***@")
    assert redact("x://" * (size // 4) + "@") == "x://" * (size // 4) + "@"
    assert redact("https://" + "u" * size + "@host").startswith("https://***@host")
    assert redact("https://u:t@h " * (size // 14)).count("***@") == size // 14


def test_the_console_stream_redacts_whole_lines() -> None:
    import io

    from compat.harness.redact import RedactingStream

    sink = io.StringIO()
    stream = RedactingStream(sink)
    stream.write("index https://user:")  # a URL written in two pieces
    stream.write("s3cr3t@host/simple\nnext ")
    assert sink.getvalue() == "index https://***@host/simple\n"
    stream.flush()
    assert sink.getvalue().endswith("next ")
