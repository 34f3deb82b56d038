"""The `shared-court` command as an operator uses it, in real subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from server.auth import tokens
from signaling import messages as m
from signaling.client import SignalingClient

CLI = [sys.executable, "-m", "server.cli"]


def _http() -> aiohttp.ClientSession:
    # The server is reached by IP address, where aiohttp's jar keeps no cookies unless unsafe.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def run(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARED_COURT_")}
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
        check=False,
    )


async def test_demo_json_prints_one_line_then_serves_working_logins_and_links(
    tmp_path: Path,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "demo",
        "--json",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        demo = json.loads(line)
        base = demo["base_url"]
        assert base.startswith("http://127.0.0.1:")
        assert (tmp_path / "shared-court.db").exists()
        # recording keys, and a playback key so the demo's judge can play recordings back
        for key in ("signing.key", "archive.key", "playback.key"):
            assert (tmp_path / "keys" / key).stat().st_mode & 0o777 == 0o600, key
        async with _http() as http:
            async with http.get(f"{base}/api/health") as resp:
                assert resp.status == 200
            async with http.post(f"{base}/api/auth/login", json=demo["judge"]) as resp:
                assert resp.status == 200
            async with http.get(f"{base}/api/hearings/{demo['hearing_id']}/recordings") as resp:
                assert (resp.status, await resp.json()) == (200, [])
            async with http.get(f"{base}/api/hearings/{demo['hearing_id']}") as resp:
                hearing = await resp.json()
                assert (resp.status, hearing["id"]) == (200, demo["hearing_id"])
                assert hearing["station_id"] == demo["station"]["station_id"]
        async with (
            _http() as http,
            http.post(f"{base}/api/auth/station", json=demo["station"]) as resp,
        ):
            assert resp.status == 200
        assert len(demo["invitations"]) == 2
        assert sorted(p["invitation_url"] for p in demo["parties"]) == sorted(
            demo["invitations"].values()
        )
        for party in demo["parties"]:
            url = party["invitation_url"]
            assert url.startswith(f"{base}/join#")
            async with _http() as http:
                async with http.get(url.split("#")[0]) as resp:
                    assert resp.status == 200
                async with http.post(
                    f"{base}/api/invitations/redeem", json={"token": url.split("#")[1]}
                ) as resp:
                    body = await resp.json()
                    assert (resp.status, body["principal"]["hearing_id"]) == (
                        200,
                        demo["hearing_id"],
                    )
                    assert body["principal"]["participant_id"] == party["participant_id"]
                # The identity check passes with exactly the name and digits printed.
                cookies = {c.key: c.value for c in http.cookie_jar}
                ws_url = base.replace("http", "ws", 1) + "/ws"
                async with SignalingClient(ws_url, cookies=cookies) as client:
                    await client.join(demo["hearing_id"])
                    identity = party["identity"]
                    await client.request(
                        m.ConfirmIdentity(name=identity["name"], id_digits=identity["id_digits"])
                    )
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=30)
    assert code == 0


def test_user_add_refuses_a_taken_username(tmp_path: Path) -> None:
    for _ in range(2):
        result = run(
            "user",
            "add",
            "clerk1",
            "--role",
            "clerk",
            "--court",
            "C",
            "--data-dir",
            str(tmp_path),
            stdin="a long enough password\n",
        )
    assert result.returncode == 1
    assert "already exists" in result.stderr


def test_user_add_and_station_add(tmp_path: Path) -> None:
    result = run(
        "user",
        "add",
        "wang",
        "--role",
        "judge",
        "--court",
        "某某法院",
        "--data-dir",
        str(tmp_path),
        stdin="a long enough password\n",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["role"] == "judge"
    result = run(
        "user",
        "add",
        "li",
        "--role",
        "judge",
        "--court",
        "某某法院",
        "--data-dir",
        str(tmp_path),
        stdin="short\n",
    )
    assert result.returncode == 1
    assert "at least 8" in result.stderr
    result = run(
        "user",
        "add",
        "dir",
        "--role",
        "station_director",
        "--court",
        "某某法院",
        "--data-dir",
        str(tmp_path),
        stdin="a long enough password\n",
    )
    assert result.returncode == 0
    result = run(
        "station",
        "add",
        "青山村",
        "--court",
        "某某法院",
        "--director",
        "dir",
        "--data-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    station = json.loads(result.stdout)
    assert tokens.plausible(station["key"])
    result = run(
        "station",
        "add",
        "x",
        "--court",
        "某某法院",
        "--director",
        "ghost",
        "--data-dir",
        str(tmp_path),
    )
    assert result.returncode == 1
    assert "no staff user" in result.stderr


def test_incomplete_subcommand_and_bad_config_fail_clearly(tmp_path: Path) -> None:
    result = run("station")
    assert result.returncode == 2
    assert "{add,run,send,devices,enrol-code,disable,enrol}" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nprot = 1\n")
    result = run("--config", str(bad), "db", "upgrade")
    assert result.returncode == 3
    assert "server.prot: unknown key" in result.stderr
    result = run("no-such-command")
    assert result.returncode == 2


def test_recording_selftest_then_verify_through_shared_court(tmp_path: Path) -> None:
    result = run("recording", "selftest", "-o", str(tmp_path), "--seconds", "1")
    assert result.returncode == 0, result.stderr
    packages = list(tmp_path.rglob("recording.json"))
    assert packages
    pub = str(tmp_path / "keys" / "signing.pub")
    result = run("verify", str(packages[0].parent), "--json", "--public-key", pub)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert (report["exit_code"], report["problems"], report["gaps"]) == (0, [], [])
    result = run("verify", str(tmp_path / "missing"), "--public-key", pub)
    assert result.returncode == 3


SHARED_COURT = Path(sys.executable).parent / "shared-court"


def installed(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console command, as an operator types it (not the module)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARED_COURT_")}
    return subprocess.run(
        [str(SHARED_COURT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_verify_and_export_options_work_in_any_order_through_the_installed_command(
    tmp_path: Path,
) -> None:
    """Options before the path used to be swallowed by the subcommand forwarding (exit 2,
    which a script reads as "intact with declared gaps")."""
    assert SHARED_COURT.exists(), SHARED_COURT
    result = installed("recording", "selftest", "-o", str(tmp_path / "st"), "--seconds", "1")
    assert result.returncode == 0, result.stderr
    package = str(tmp_path / "st" / "recording")
    pub = str(tmp_path / "st" / "keys" / "signing.pub")
    key = str(tmp_path / "st" / "keys" / "archive.key")
    for args in (
        ["verify", "--json", "--public-key", pub, package],
        ["verify", "--public-key", pub, package, "--json"],
        ["verify", package, "--public-key", pub, "--json"],
        ["-v", "verify", "--json", "--public-key", pub, package],
    ):
        result = installed(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert json.loads(result.stdout)["verdict"] == "INTACT", args
    for i, args in enumerate(
        (
            ["export", "--public-key", pub, "--key-file", key, "-o", str(tmp_path / "e0"), package],
            ["export", package, "-o", str(tmp_path / "e1"), "--key-file", key, "--public-key", pub],
        )
    ):
        result = installed(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert (tmp_path / f"e{i}" / "selftest-participant.webm").stat().st_size > 0
    for name in ("verify", "export", "recover"):
        result = installed(name, "--help")
        assert result.returncode == 0, (name, result.stderr)
        assert "usage:" in result.stdout
        assert name in result.stdout
        result = installed(name, "-h")
        assert result.returncode == 0, (name, result.stderr)
    # A usage error of verify/export is 3, never 2 (2 means "intact with declared gaps").
    for args in (
        ["verify"],
        ["verify", "--no-such-option", package],
        ["export", package],
        ["export", "--key-file", key, package],
    ):
        result = installed(*args)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        assert "usage:" in result.stderr
