"""The breach check against a real breach-server on loopback (demo corpus)."""

from __future__ import annotations

import csv
import dataclasses
import json
import socket

import pytest

from breachcheck import check_password, check_vault
from breachcheck.breach import EntryResult, PasswordReport, Skipped, VaultReport
from breachcheck.errors import (
    CheckError,
    InvalidValueError,
    ServerConnectionError,
    VaultError,
)

VAULTS = ["chrome", "firefox", "bitwarden"]


@pytest.mark.parametrize("name", VAULTS)
def test_check_vault_matches_the_fixture_answers(breach_server, repo, name):
    vaults = repo / "fixtures" / "data" / "vaults"
    expected = json.loads((vaults / f"{name}.expected.json").read_text(encoding="utf-8"))
    report = check_vault(vaults / f"{name}.csv", breach_server, timeout=120)
    assert isinstance(report, VaultReport)
    assert all(isinstance(r, EntryResult) for r in report.results)
    assert report.checked == expected["checked"]
    assert [dataclasses.asdict(r) for r in report.results] == expected["results"]
    # Every data record of the export is either checked or skipped.
    with open(vaults / f"{name}.csv", newline="", encoding="utf-8-sig") as f:
        records = sum(1 for _ in csv.reader(f)) - 1
    assert isinstance(report.skipped, Skipped)
    assert report.checked + report.skipped.empty_password + report.skipped.not_a_login == records
    # The fixtures hold both breached and clean entries.
    assert 0 < len(report.breached) < report.checked


def test_check_password_seen_and_unseen(breach_server, repo):
    expected = json.loads(
        (repo / "fixtures" / "data" / "vaults" / "chrome.expected.json").read_text(encoding="utf-8")
    )
    # Entry 6 of chrome.csv has the password "abc123".
    seen = next(r for r in expected["results"] if r["entry"] == 6)["password_seen"]
    assert seen > 0
    assert check_password("abc123", breach_server, timeout=120) == PasswordReport(True, seen)
    unseen = check_password("correct horse battery staple 8f3a1c", breach_server, timeout=120)
    assert unseen == PasswordReport(False, 0)


def test_empty_password_is_refused_before_any_connection():
    with pytest.raises(InvalidValueError, match="empty"):
        check_password("", "http://127.0.0.1:1")


def test_no_server_listening_is_a_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The port is closed again: nothing listens there.
    with pytest.raises(ServerConnectionError) as info:
        check_password("hunter2", f"http://127.0.0.1:{port}", call_timeout=10, retry=False)
    assert isinstance(info.value, ConnectionError)
    assert isinstance(info.value, CheckError)


def test_bad_url_and_options():
    with pytest.raises(InvalidValueError):
        check_password("hunter2", "not a url", retry=False)
    with pytest.raises(InvalidValueError):
        check_password("hunter2", "http://127.0.0.1:1", call_timeout=0)
    with pytest.raises(InvalidValueError):
        check_password("hunter2", "http://127.0.0.1:1", timeout=-1.0)


def test_bad_vaults(tmp_path, breach_server):
    with pytest.raises(VaultError, match="missing.csv"):
        check_vault(tmp_path / "missing.csv", breach_server)
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    with pytest.raises(VaultError, match="unrecognized CSV header"):
        check_vault(odd, breach_server)
    with pytest.raises(InvalidValueError, match="unknown vault format"):
        check_vault(odd, breach_server, format="notepad")
