"""The ``shared-court`` command.

Subcommands: ``serve``, ``demo``, ``db upgrade``, ``user add``, ``station add``, ``verify``
(a recording package or a sealed document), ``export``, ``recover``, ``recording selftest``,
``document pdf``, ``station``, ``node`` (a cluster's nodes). Exit codes: 0 success, 1 failure,
2 usage, 3 configuration error; except ``verify``, ``export``
and ``recover``, which keep the evidence contract of ``recordings.cli`` (0 intact, 2 intact with
declared gaps, 1 tampered or incomplete, 3 usage or I/O error) for every argument they get.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from recordings.cli import main as recordings_main
from server import station_cli
from server.config import Config, ConfigError, load_config

log = logging.getLogger("shared_court")

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_CONFIG = 0, 1, 2, 3


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop: stock asyncio's datagram reads cost ~25 us per packet more here."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(main)
        return
    uvloop.run(main)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _config(args: argparse.Namespace, **overrides: Any) -> Config:
    merged: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        merged["data_dir"] = str(args.data_dir)
    server: dict[str, Any] = {}
    if getattr(args, "host", None):
        server["host"] = args.host
    if getattr(args, "port", None) is not None:
        server["port"] = args.port
    if server:
        merged["server"] = server
    merged.update(overrides)
    return load_config(args.config, overrides=merged)


async def _serve(config: Config, on_ready: Callable[[], Awaitable[None]] | None = None) -> None:
    from aiohttp import web

    from server.app import create_app
    from server.storage.db import upgrade_async

    await upgrade_async(config.database_url)
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ssl_context = None
    if config.server.tls_cert_file and config.server.tls_key_file:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(config.server.tls_cert_file, config.server.tls_key_file)
    site = web.TCPSite(runner, config.server.host, config.server.port, ssl_context=ssl_context)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if on_ready is not None:
            await on_ready()
        else:
            log.info("serving on %s", config.server.base_url)
        await stop.wait()
    finally:
        await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> int:
    config = _config(args)
    rec = config.recording
    if rec.enabled and (rec.signing_key_file is None or not rec.archive_public_key_files):
        print(
            "configuration error: hearings must be recorded: set recording.signing_key_file and "
            "recording.archive_public_key_files (create them with `shared-court recording keygen "
            "-o DIR`), or set recording.enabled = false",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    _run(_serve(config))
    return EXIT_OK


def _demo_keys(data_dir: Path) -> dict[str, Any]:
    """Recording keys for the demo, made once under data_dir/keys (the archive key included,
    which a real court keeps off the server), and a playback key so staff can play back."""
    from recordings import ArchivePrivateKey, keygen

    keys = data_dir / "keys"
    signing, archive = keys / "signing.key", keys / "archive.pub"
    if not signing.exists():
        files = keygen(keys)
        signing, archive = files.signing_private, files.archive_public
    playback = keys / "playback.key"
    if not playback.exists():
        fd = os.open(playback, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(ArchivePrivateKey.generate().private_pem())
    return {
        "signing_key_file": str(signing),
        "archive_public_key_files": [str(archive)],
        "playback_key_file": str(playback),
    }


def cmd_demo(args: argparse.Namespace) -> int:
    host = args.host or "127.0.0.1"
    port = args.port if args.port else _free_port(host) if args.port == 0 else 8080
    data_dir = Path(args.data_dir) if args.data_dir else Path("var")
    config = _config(args, server={"host": host, "port": port}, recording=_demo_keys(data_dir))

    async def main() -> None:
        from server.clock import SystemClock
        from server.demo import seed
        from server.storage.db import create_engine, create_sessionmaker

        async def ready() -> None:
            engine = create_engine(config.database_url)
            try:
                info = await seed(
                    create_sessionmaker(engine), SystemClock(), config.server.base_url
                )
            finally:
                await engine.dispose()
            if args.json:
                print(json.dumps(info.to_json(), ensure_ascii=False), flush=True)
            else:
                print(info.to_text(), flush=True)

        await _serve(config, on_ready=ready)

    _run(main())
    return EXIT_OK


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from server.storage.db import upgrade

    config = _config(args)
    upgrade(config.database_url)
    print("database is up to date")
    return EXIT_OK


def cmd_node(args: argparse.Namespace) -> int:
    """`node list | drain ID | undrain ID`: the cluster's nodes, read and marked in Redis."""
    from redis.asyncio import Redis

    from server.cluster.admin import ClusterAdmin, UnknownNodeError, table
    from server.cluster.node import prepare_client

    config = _config(args)
    if config.cluster.redis_url is None:
        print("no cluster: cluster.redis_url is not set in the configuration", file=sys.stderr)
        return EXIT_CONFIG
    redis_url = config.cluster.redis_url
    outcome: list[int] = []

    async def main() -> None:
        await prepare_client()
        admin = ClusterAdmin(
            Redis.from_url(redis_url, decode_responses=True), config.cluster.key_prefix
        )
        try:
            if args.node == "list":
                rows = await admin.nodes()
                if args.json:
                    print(
                        json.dumps(
                            [
                                {**r.info.__dict__, "heartbeat_age_s": round(r.age_s, 1)}
                                for r in rows
                            ]
                        )
                    )
                else:
                    print(table(rows) if rows else "no live node")
            else:
                on = args.node == "drain"
                wait = 0.0 if args.no_wait else 3 * config.cluster.heartbeat_interval_s
                row = await admin.set_draining(args.node_id, on, wait_s=wait)
                if args.no_wait:
                    state = "asked (from its next report)"
                else:
                    state = "draining" if row.info.draining else "not draining"
                print(f"{args.node_id}: {state}")
        except UnknownNodeError as exc:
            print(f"no live node reports as {exc}", file=sys.stderr)
            outcome.append(EXIT_FAIL)
        except TimeoutError:
            print(f"{args.node_id} did not report the change in time", file=sys.stderr)
            outcome.append(EXIT_FAIL)
        finally:
            await admin.redis.aclose()

    _run(main())
    return outcome[0] if outcome else EXIT_OK


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file:
        from server.config import read_secret

        return read_secret(Path(args.password_file))
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("passwords differ")
    return first


def cmd_user_add(args: argparse.Namespace) -> int:
    from server import admin
    from server.auth.passwords import WeakPasswordError
    from server.clock import SystemClock
    from server.enums import StaffRole
    from server.errors import CourtError
    from server.storage.db import create_engine, create_sessionmaker, upgrade

    config = _config(args)
    password = _read_password(args)
    upgrade(config.database_url)

    async def main() -> str:
        engine = create_engine(config.database_url)
        try:
            async with create_sessionmaker(engine).begin() as db:
                clock = SystemClock()
                court = await admin.ensure_court(db, clock, args.court)
                user = await admin.add_user(
                    db,
                    clock,
                    court=court,
                    username=args.username,
                    display_name=args.name or args.username,
                    role=StaffRole(args.role),
                    password=password,
                )
                return user.id
        finally:
            await engine.dispose()

    try:
        user_id = asyncio.run(main())
    except (WeakPasswordError, CourtError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(json.dumps({"user_id": user_id, "username": args.username, "role": args.role}))
    return EXIT_OK


def cmd_station_add(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from server import admin
    from server.clock import SystemClock
    from server.storage.db import create_engine, create_sessionmaker, upgrade
    from server.storage.models import User

    config = _config(args)
    upgrade(config.database_url)

    async def main() -> dict[str, str] | str:
        engine = create_engine(config.database_url)
        try:
            async with create_sessionmaker(engine).begin() as db:
                clock = SystemClock()
                court = await admin.ensure_court(db, clock, args.court)
                director = None
                if args.director:
                    director = await db.scalar(select(User).where(User.username == args.director))
                    if director is None or director.court_id != court.id:
                        return f"no staff user {args.director!r} in court {args.court!r}"
                created = await admin.add_station(
                    db,
                    clock,
                    court=court,
                    name=args.name,
                    location=args.location,
                    director=director,
                )
                return {"station_id": created.station.id, "key": created.key}
        finally:
            await engine.dispose()

    result = asyncio.run(main())
    if isinstance(result, str):
        print(f"error: {result}", file=sys.stderr)
        return EXIT_FAIL
    # The key is shown once; only its digest is stored.
    print(json.dumps(result))
    return EXIT_OK


def _delegate_recordings(argv: list[str], prog: str) -> int:
    return int(recordings_main(argv, prog=prog))


def _station_client_arguments(parser: argparse.ArgumentParser, command: str = "run") -> None:
    try:
        from station_client import cli
    except ImportError:  # installed without the station extra (pyaudio)
        return
    (cli.add_run_arguments if command == "run" else cli.add_send_arguments)(parser)


def _station_client(command: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            from station_client import cli
        except ImportError as exc:
            print(f"shared-court station: the station client needs {exc.name}", file=sys.stderr)
            return EXIT_USAGE
        commands = {"run": cli.run, "send": cli.send, "devices": cli.devices, "enrol": cli.enrol}
        return int(commands[command](args))

    return run


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shared-court", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_server_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, help="data directory (default var/)")
        p.add_argument("--host")
        p.add_argument("--port", type=int)

    p = sub.add_parser("serve", help="run the server")
    with_server_opts(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="seed a demo court and serve it")
    with_server_opts(p)
    p.add_argument("--json", action="store_true", help="print one line of JSON before serving")
    p.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db", required=True)
    p = db.add_parser("upgrade", help="apply migrations")
    p.add_argument("--data-dir", type=Path)
    p.set_defaults(func=cmd_db_upgrade)

    user = sub.add_parser("user", help="staff accounts").add_subparsers(dest="user", required=True)
    p = user.add_parser("add", help="create a staff account (password from stdin or a file)")
    p.add_argument("username")
    p.add_argument(
        "--role", required=True, choices=["judge", "clerk", "mediator", "station_director", "admin"]
    )
    p.add_argument("--court", required=True, help="court name (created if absent)")
    p.add_argument("--name", help="display name")
    p.add_argument("--password-file")
    p.add_argument("--data-dir", type=Path)
    p.set_defaults(func=cmd_user_add)

    station = sub.add_parser("station", help="stations: `station add`, or run the station client")
    ssub = station.add_subparsers(dest="station", required=False)
    p = ssub.add_parser("add", help="register a station and print its key (shown once)")
    p.add_argument("name")
    p.add_argument("--court", required=True)
    p.add_argument("--location", default="")
    p.add_argument("--director", help="username of the station director")
    p.add_argument("--data-dir", type=Path)
    p.set_defaults(func=cmd_station_add)
    p = ssub.add_parser("run", help="the station client: join the station's hearing")
    _station_client_arguments(p)
    p.set_defaults(func=_station_client("run"))
    p = ssub.add_parser("send", help="send the court the station's unsent backup recordings")
    _station_client_arguments(p, "send")
    p.set_defaults(func=_station_client("send"))
    p = ssub.add_parser("devices", help="list the audio devices (for --microphone/--speaker)")
    p.set_defaults(func=_station_client("devices"))
    station_cli.add_parsers(ssub, _config, _station_client)  # enrol-code, disable, enrol
    station.set_defaults(func=lambda _args: _usage(station))

    node = sub.add_parser(
        "node", help="cluster nodes: `node list`, `node drain ID`, `node undrain ID`"
    )
    nsub = node.add_subparsers(dest="node", required=True)
    p = nsub.add_parser("list", help="each live node's report: url, cpu, hearings, draining, age")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_node)
    for name, text in (
        ("drain", "keep the node's live hearings, place no new hearing on it"),
        ("undrain", "let the node take new hearings again"),
    ):
        p = nsub.add_parser(name, help=text)
        p.add_argument("node_id", help="the node's id, as `node list` shows it")
        p.add_argument("--no-wait", action="store_true", help="do not wait for its next report")
        p.set_defaults(func=cmd_node)

    # Listed here for `shared-court --help` only: main() hands their arguments to
    # recordings.cli before this parser sees them (see _forwarded).
    for name, text in (
        ("verify", "verify an evidence recording offline (see verify --help)"),
        ("export", "verify, then decrypt an evidence recording (see export --help)"),
        ("recover", "seal unfinished evidence recordings (see recover --help)"),
        ("recording", "recording tools: selftest, keygen"),
        ("document", "sealed hearing documents: document pdf DOC.json -o OUT.pdf"),
    ):
        sub.add_parser(name, help=text, add_help=False)
    return parser


# Subcommands whose whole argument list belongs to recordings.cli (its own parser, its own
# exit codes). An argparse REMAINDER cannot forward them: options before the path were taken
# as this parser's and failed with exit 2, which a script reads as "intact with declared gaps".
FORWARDED = ("verify", "export", "recover", "recording", "document")


def _forwarded(argv: list[str]) -> tuple[bool, str, list[str]] | None:
    """Split `[global options] verify|export|recover|recording ARGS` into (verbose, prog,
    argv for recordings.cli); None for any other command."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-v", "--verbose") or arg.startswith("--config="):
            i += 1
        elif arg == "--config":
            i += 2
        else:
            break
    if i >= len(argv) or argv[i] not in FORWARDED:
        return None
    verbose = any(a in ("-v", "--verbose") for a in argv[:i])
    if argv[i] == "recording":
        return verbose, "shared-court recording", argv[i + 1 :]
    return verbose, "shared-court", argv[i:]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    forwarded = _forwarded(argv)
    if forwarded is not None:
        verbose, prog, rest = forwarded
        if verbose:
            logging.basicConfig(
                level=logging.DEBUG,
                format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                stream=sys.stderr,
            )
        return _delegate_recordings(rest, prog)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
