"""`shared-court station enrol-code` and `station disable`: the administrator's side of
enrolling a station without pasting secrets (issue 14; server/hearings/station_enrolment.py).

Both run on the server against its database: the station is named by its name or id within
the court. `enrol-code` prints one JSON line with the one-time code and when it expires;
`disable` (or `--enable`) prints the station's new state. Exit codes: 0 done, 1 no such station
or court, 3 configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select

EXIT_OK, EXIT_FAIL = 0, 1


def add_parsers(
    ssub: Any, config: Callable[[argparse.Namespace], Any], station_client: Callable[[str], Any]
) -> None:
    """Add the subcommands to `shared-court station`."""
    p = ssub.add_parser("enrol-code", help="issue a one-time enrolment code for a station")
    p.add_argument("station", help="the station's name or id")
    p.add_argument("--court", required=True)
    p.add_argument("--data-dir", type=Path)
    p.set_defaults(func=lambda args: _issue(args, config(args)))
    p = ssub.add_parser("disable", help="disable a station (or --enable it again)")
    p.add_argument("station", help="the station's name or id")
    p.add_argument("--court", required=True)
    p.add_argument("--enable", action="store_true", help="enable the station again")
    p.add_argument("--data-dir", type=Path)
    p.set_defaults(func=lambda args: _disable(args, config(args)))
    p = ssub.add_parser(
        "enrol", help="the station client: create the station's key and register it with a code"
    )
    try:
        from station_client import cli

        cli.add_enrol_arguments(p)
    except ImportError:  # installed without the station extra
        pass
    p.set_defaults(func=station_client("enrol"))


async def _station(db: Any, court_name: str, station: str) -> Any:
    from server.storage.models import Court, Station

    court = await db.scalar(select(Court).where(Court.name == court_name))
    if court is None:
        return None
    return await db.scalar(
        select(Station).where(
            Station.court_id == court.id, or_(Station.name == station, Station.id == station)
        )
    )


def _with_db(config: Any, work: Callable[[Any], Any]) -> Any:
    from server.storage.db import create_engine, create_sessionmaker, upgrade

    upgrade(config.database_url)

    async def main() -> Any:
        engine = create_engine(config.database_url)
        try:
            async with create_sessionmaker(engine).begin() as db:
                return await work(db)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _issue(args: argparse.Namespace, config: Any) -> int:
    from server.clock import SystemClock
    from server.hearings.station_enrolment import issue_code_in

    async def work(db: Any) -> dict[str, str] | None:
        station = await _station(db, args.court, args.station)
        if station is None:
            return None
        issued = await issue_code_in(db, station, SystemClock(), "cli")
        return {
            "station_id": issued.station_id,
            "code": issued.code,
            "expires_at": issued.expires_at.isoformat(),
        }

    result = _with_db(config, work)
    if result is None:
        print(f"error: no station {args.station!r} in court {args.court!r}", file=sys.stderr)
        return EXIT_FAIL
    print(json.dumps(result))  # shown once; only its digest is stored
    return EXIT_OK


def _disable(args: argparse.Namespace, config: Any) -> int:
    from server.storage.station_status import StationKeyRepository

    async def work(db: Any) -> dict[str, Any] | None:
        station = await _station(db, args.court, args.station)
        if station is None:
            return None
        station.disabled = not args.enable
        ended = []
        if station.disabled:
            from server.clock import SystemClock

            keys = StationKeyRepository(db)
            ended = await keys.open_session_ids(station.id)
            await keys.revoke_sessions(ended, SystemClock().now())
        return {
            "station_id": station.id,
            "disabled": station.disabled,
            "sessions_ended": len(ended),
        }

    result = _with_db(config, work)
    if result is None:
        print(f"error: no station {args.station!r} in court {args.court!r}", file=sys.stderr)
        return EXIT_FAIL
    print(json.dumps(result))
    return EXIT_OK
