from __future__ import annotations

import base64
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from uv import find_uv_bin

from compat.harness.commands import cli
from compat.harness.config.matrix import Matrix
from compat.harness.execute import cell_runner
from compat.harness.install.envs import EnvRecord
from compat.harness.install.pipconfig import (
    PipIndexConfig,
    parse_pip_config_list,
    read_pip_config,
)

from .fake_index import Listing, build_wheel, serve, write_listing

ROOT = Path(__file__).resolve().parents[2]

# Verbatim ``pip config list`` of the reference machine, plus an install-section override.
PIP_CONFIG_LIST = """\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.default-timeout='180'
:env:.find-links='/opt/wheels'
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.constraint='/etc/xdg/pip/constraints.txt'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.find-links='/somewhere/else'
install.index-url='https://mirror.invalid/simple'
"""


def test_env_overrides_files_and_lists_split() -> None:
    config = parse_pip_config_list(PIP_CONFIG_LIST)
    assert config == PipIndexConfig(
        index_url="https://mirror.invalid/simple",
        extra_index_urls=("file:///opt/pypi/simple", "file:///opt/pypi-more/simple"),
        find_links=("/opt/wheels",),
    )


def test_uv_args_keep_pips_best_match_semantics() -> None:
    args = parse_pip_config_list(PIP_CONFIG_LIST).uv_args()
    assert args == [
        "--index-url",
        "https://mirror.invalid/simple",
        "--extra-index-url",
        "file:///opt/pypi/simple",
        "--extra-index-url",
        "file:///opt/pypi-more/simple",
        "--find-links",
        "/opt/wheels",
        "--index-strategy",
        "unsafe-best-match",
    ]


def test_constraint_is_not_passed_on() -> None:
    assert "constraint" not in " ".join(parse_pip_config_list(PIP_CONFIG_LIST).uv_args())


def test_empty_config_adds_nothing() -> None:
    assert parse_pip_config_list("").uv_args() == []
    assert parse_pip_config_list(":env:.no-index='true'\n").uv_args() == ["--no-index"]


def test_uv_errors_are_reduced_to_kind_and_telling_line() -> None:
    from compat.harness.install.uv_cli import _classify_uv_error

    unreachable = (
        "error: Request failed after 3 retries in 6.6s\n"
        "  cause: Failed to fetch: https://u:tok@idx.invalid/whl/test/cpu/torchao/\n"
        "  cause: error sending request for url (https://idx.invalid/whl/test/cpu/torchao/)\n"
        "  cause: failed to lookup address information: Name or service not known\n"
    )
    kind, line = _classify_uv_error(unreachable)
    assert kind == "index-unreachable"
    assert line == (
        "error: Request failed after 3 retries in 6.6s (Failed to fetch: "
        "https://***@idx.invalid/whl/test/cpu/torchao/; failed to lookup address "
        "information: Name or service not known)"
    )
    missing = (
        "  \u00d7 No solution found when resolving dependencies:\n"
        "  ╰─▶ Because there is no version of torch==9.9 and you require torch==9.9, "
        "we can conclude that your requirements are unsatisfiable.\n"
    )
    kind, line = _classify_uv_error(missing)
    assert kind == "no-such-version"
    assert line.startswith("Because there is no version of torch==9.9")


def test_a_full_disk_is_not_an_unreachable_index() -> None:
    """Verbatim from a CI run whose /tmp filled up while uv extracted a CUDA wheel."""
    from compat.harness.install.uv_cli import _classify_uv_error

    text = (
        "error: Failed to download `nvidia-cudnn-cu13==9.20.0.48`\n"
        "  cause: Failed to extract archive: nvidia_cudnn_cu13-9.20.0.48-py3-none-"
        "manylinux_2_27_x86_64.whl\n"
        "  cause: failed to write to file `/tmp/cold-cache/.tmpwgdXnb/nvidia/cudnn/lib/"
        "libcudnn_engines_precompiled.so.9`: No space left on device (os error 28)\n"
    )
    kind, line = _classify_uv_error(text)
    assert kind == "disk-full"
    assert line.startswith("error: Failed to download `nvidia-cudnn-cu13==9.20.0.48` (Failed ")
    assert line.endswith("No space left on device (os error 28))")


def test_a_venv_without_pip_asks_its_base_interpreter(tmp_path: Path) -> None:
    """nox's uv backend makes venvs with no pip; the machine's pip config must still count."""
    venv = tmp_path / "no-pip"
    subprocess.run([find_uv_bin(), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    assert subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode != 0
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PIP_FIND_LINKS": "/wheels/from-env",
        "PIP_CONFIG_FILE": os.devnull,
    }
    code = (
        "from compat.harness.install.pipconfig import read_pip_config; "
        "print(read_pip_config().find_links)"
    )
    out = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "('/wheels/from-env',)"


def test_pips_answer_is_kept_until_a_file_it_reads_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip is started once; while its files and variables are as they were, the kept
    answer is read; a changed config file makes pip answer again."""
    from compat.harness.install import pipconfig

    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nfind-links = /wheels/one\n", encoding="utf-8")
    env = {**os.environ, "PIP_CONFIG_FILE": str(conf)}
    env = {k: v for k, v in env.items() if k != "PIP_FIND_LINKS"}
    kept = tmp_path / "kept.json"
    first = read_pip_config(env, remember=kept)
    assert "/wheels/one" in first.find_links
    assert kept.is_file()

    real_run = subprocess.run
    started: list[list[str]] = []

    def counting_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        started.append(cmd)
        return real_run(cmd, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(pipconfig.subprocess, "run", counting_run)
    assert read_pip_config(env, remember=kept) == first
    assert started == []  # nothing changed: no pip
    conf.write_text("[global]\nfind-links = /wheels/two\n", encoding="utf-8")
    second = read_pip_config(env, remember=kept)
    assert "/wheels/two" in second.find_links
    assert started  # the file changed: pip was asked again


def _status_with_credentials(url: str) -> int:
    """The status the index answers ``url`` with, sending the URL's user-info as basic auth."""
    parts = urlsplit(url)
    bare = parts._replace(netloc=parts.hostname + f":{parts.port}").geturl()
    request = urllib.request.Request(bare + "torch/")
    token = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_private_index_credentials_survive_a_second_run(
    cell_world: Callable[..., Matrix], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs through the command line, the second reading pip's kept answer: both give
    uv the real credentials of the private index (which refuses anything else), and the
    kept answer on disk holds no secret."""
    matrix = cell_world("plain", versions=("2.8.0",))
    index = tmp_path / "index"
    wheel = build_wheel(index, "torch", "2.8.0", "py3-none-any")
    write_listing(index, Listing("torch", [wheel]))
    given: list[list[str]] = []

    def fake_env(plan: object, *, log: Path, timeout: float) -> EnvRecord:
        given.append(list(plan.index_args))  # type: ignore[attr-defined]
        return EnvRecord(Path(sys.executable), True, 0.0, "fake-key")

    monkeypatch.setattr(cell_runner, "ensure_env", fake_env)
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("UV_OFFLINE", "1")  # the disk estimate's resolve stays on this machine
    monkeypatch.setenv("COMPAT_ENVS_DIR", str(tmp_path / "envs"))
    monkeypatch.chdir(tmp_path)
    with serve(index, auth="user:secret") as base:
        url = base.replace("http://", "http://user:secret@") + "/"
        conf = tmp_path / "pip.conf"
        conf.write_text(f"[global]\nextra-index-url = {url}\n", encoding="utf-8")
        monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
        assert _status_with_credentials(url.replace("secret", "wrong")) == 401
        for run in ("first", "second"):
            code = cli.main(["matrix", "--matrix", str(matrix.path), "--out", str(tmp_path / run)])
            assert code == 0
        assert len(given) == 2
        for args in given:
            extra = [args[i + 1] for i, arg in enumerate(args) if arg == "--extra-index-url"]
            assert extra == [url]
            assert _status_with_credentials(extra[0]) == 200
    kept = tmp_path / "envs" / ".pip-config.json"
    assert kept.is_file()
    assert "secret" not in kept.read_text(encoding="utf-8")
