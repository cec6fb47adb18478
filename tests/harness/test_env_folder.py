"""One owner of an env's folder: its names, its layout and its removal rule."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from compat.harness.install.env_folder import STAMP, Env
from compat.harness.install.envs import env_lock
from compat.harness.install.install_plan import InstallPlan


def built(root: Path, name: str) -> Env:
    env = Env(root, name)
    site = env.path / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "blob").write_bytes(b"x" * 100)
    env.stamp_path.write_text("{}", encoding="utf-8")
    return env


def test_names_and_layout(tmp_path: Path) -> None:
    env = Env(tmp_path, "torch2.8.0-torch.ao-py3.11")
    assert env.path == tmp_path / "torch2.8.0-torch.ao-py3.11"
    assert env.lock_path == tmp_path / ".torch2.8.0-torch.ao-py3.11.lock"
    assert env.stamp_path == env.path / STAMP
    assert Env.at(env.path) == env
    plan = InstallPlan("c", "3.11", ("torch==2.8.0",), (), tmp_path / "c")
    assert Env.of(plan) == Env(tmp_path, "c")
    assert env.site_packages() is None
    assert built(tmp_path, "b").site_packages() == tmp_path / "b/lib/python3.11/site-packages"


def test_remove_takes_the_stamp_first_and_keeps_the_lock_file(tmp_path: Path) -> None:
    env = built(tmp_path, "e")
    assert env.remove(wait=True)
    assert not env.path.exists()
    assert env.lock_path.exists()  # a waiter may hold it open: never replaced by a new one
    assert built(tmp_path, "f").remove(wait=False)


# Another process running a cell: holds the env's lock shared until its stdin closes.
HOLDER = """
import fcntl, sys
with open(sys.argv[1], "a+") as handle:
    fcntl.flock(handle, fcntl.LOCK_SH)
    print("ready", flush=True)
    sys.stdin.read()
"""


def test_an_env_in_use_is_left_alone_or_waited_for(tmp_path: Path) -> None:
    """Locks are per process (flock): the user runs in another process."""
    env = built(tmp_path, "busy")
    user = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(env.lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert user.stdout is not None
        assert user.stdout.readline() == "ready\n"
        assert not env.remove(wait=False)
        assert env.stamp_path.exists()  # untouched: not even the stamp went
        assert user.stdin is not None
        threading.Timer(0.5, user.stdin.close).start()
        assert env.remove(wait=True)  # waits for the run to end
        assert not env.path.exists()
    finally:
        user.kill()
        user.wait(30)
        for stream in (user.stdin, user.stdout):
            if stream is not None:
                stream.close()


def test_env_lock_is_the_envs_lock(tmp_path: Path) -> None:
    env = built(tmp_path, "l")
    with env_lock(env.path, exclusive=True):
        assert env.lock_path.exists()
