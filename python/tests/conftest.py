"""Shared fixtures: the repository root and a real breach server on loopback."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
#: How long the server may take to print `ready on` (it imports the demo
#: corpus into a fresh data directory first: about a second here).
READY_TIMEOUT = 180.0


def _server_binary() -> Path:
    """$BREACH_SERVER_BIN (set by python/ci.sh), else the release build in
    $CARGO_TARGET_DIR or target/, else built with cargo."""
    explicit = os.environ.get("BREACH_SERVER_BIN")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            pytest.fail(f"BREACH_SERVER_BIN={explicit} is not a file")
        return path
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = target / "release" / "breach-server"
    if not path.is_file():
        cargo = shutil.which("cargo")
        if cargo is None:
            pytest.skip("no breach-server binary and no cargo to build it (set BREACH_SERVER_BIN)")
        subprocess.run(
            [cargo, "build", "--release", "-p", "breach-server"], cwd=REPO, check=True, timeout=1800
        )
    return path


def _read_lines(stream, lines: "queue.Queue[str | None]") -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@pytest.fixture(scope="session")
def breach_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`breach-server serve` on the bundled demo corpus, on 127.0.0.1 with
    a free port; yields its http:// URL once it prints `ready on`."""
    data_dir = tmp_path_factory.mktemp("breach-data")
    env = dict(os.environ, RUST_LOG="warn")
    proc = subprocess.Popen(
        [
            str(_server_binary()),
            "serve",
            "--data-dir",
            str(data_dir),
            "--listen",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: "queue.Queue[str | None]" = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        address = None
        while address is None:
            try:
                line = lines.get(timeout=READY_TIMEOUT)
            except queue.Empty:
                pytest.fail(f"breach-server printed no `ready on` within {READY_TIMEOUT} s")
            if line is None:
                pytest.fail(f"breach-server exited early with status {proc.wait(timeout=10)}")
            if line.startswith("ready on "):
                address = line.split()[-1]
        yield f"http://{address}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
