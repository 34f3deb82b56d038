"""The court's quality-and-efficiency view (issue 15.4): what courts are judged by, computed from
the court's own records (hearings, cases, people and the hash-chained event log).

Definitions (docs/ui.md "Statistics" repeats them for the people who read the page):

- Scope: the court's hearings whose scheduled start falls in the period (court days, Asia/
  Shanghai, `start` and `end` inclusive), optionally only those at one station or of cases of one
  cause of action.
- Held: a hearing that went on the record (its log has a `hearing.state` entry to
  `in_session`). Cancelled: closed with a cancel reason. A held hearing counts as a mediation
  when its case is in mediation mode, as a hearing otherwise.
- Mediation success rate: of the hearings in scope with an outcome, those with an
  `agreement.effective` entry over those with it or a `mediation.failed` entry.
- Days to resolution: for each case with a hearing in scope, from the case's opening to its
  resolution: the first `agreement.effective` entry of any of its hearings or, for a case in
  hearing mode, the first close (`hearing.state` to `closed`) of a hearing of it that was held.
  Mean and median over the resolved cases; unresolved cases are counted apart.
- Recording complete and verified: a held hearing whose recordings were all sealed `complete`
  (none recovered after a crash), with no `recording.problem` entry and no party disputing the
  root hash, and at least one party confirming that the root hash they were shown matches
  (AVR 9).
- No-show: a party, agent, witness, expert or interpreter of a held hearing who never connected.
  Departures: `participant.departed` entries before the end (the close, `JUDGE_ENDED`, is not a
  departure), excused or not as the live room decided (server/hearings/live.py
  EXCUSED_CAUSES), and by cause.
- Connection quality per station: its latest self-test (overall score, round trip and loss of
  the network check), and its line drops: departures of the station's own connection for a
  network or power cause, in the held hearings in scope, per held hearing; station reports.
"""

from __future__ import annotations

import csv
import io
import statistics as pystats
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principals import Principal, StaffPrincipal
from server.clock import Clock
from server.enums import COURT_READERS, EventKind, HearingMode, HearingRole, HearingState
from server.errors import CourtError, ErrorCode, not_found
from server.hearings.access import forbidden
from server.hearings.booking import COURT_ZONE
from server.hearings.stations import overall_score
from server.storage.models import Case, Hearing, HearingEvent
from server.storage.statistics_repositories import StatisticsRepository

MAX_DAYS = 3 * 366
ATTENDING_ROLES = frozenset(
    {
        HearingRole.PLAINTIFF,
        HearingRole.DEFENDANT,
        HearingRole.AGENT,
        HearingRole.WITNESS,
        HearingRole.EXPERT,
        HearingRole.INTERPRETER,
    }
)
# Departure causes that say the line (or the station's power) failed, not the person.
LINE_CAUSES = frozenset(
    {"ICE_FAILED", "NETWORK_LOST", "HEARTBEAT_LOST", "STATION_NETWORK", "STATION_POWER"}
)
ARRIVALS = (
    EventKind.PARTICIPANT_CONNECTED,
    EventKind.PARTICIPANT_JOINED,
    EventKind.PARTICIPANT_RECONNECTED,
)
COUNTED = (
    EventKind.HEARING_STATE,
    EventKind.AGREEMENT_EFFECTIVE,
    EventKind.MEDIATION_FAILED,
    EventKind.RECORDING_SEALED,
    EventKind.RECORDING_PROBLEM,
    EventKind.RECORDING_CONFIRMED,
    EventKind.RECORDING_DISPUTED,
    EventKind.PARTICIPANT_DEPARTED,
    EventKind.STATION_REPORT,
    *ARRIVALS,
)


@dataclass(frozen=True, slots=True)
class Filters:
    start: date
    end: date  # inclusive
    station_id: str | None = None
    cause: str | None = None


@dataclass
class GroupRow:
    """Held hearings and mediations of one court, station or judge."""

    id: str | None
    name: str
    hearings: int = 0
    mediations: int = 0


@dataclass
class MediationFigures:
    effective: int = 0
    failed: int = 0
    success_rate: float | None = None


@dataclass
class ResolutionFigures:
    cases: int = 0
    resolved: int = 0
    mean_days: float | None = None
    median_days: float | None = None


@dataclass
class RecordingFigures:
    held: int = 0
    complete_and_verified: int = 0
    share: float | None = None


@dataclass
class AttendanceFigures:
    no_shows: int = 0
    excused_departures: int = 0
    unexcused_departures: int = 0
    by_cause: dict[str, int] = field(default_factory=dict)


@dataclass
class StationQuality:
    station_id: str
    name: str
    held: int = 0
    self_test_overall: str | None = None
    self_test_at: datetime | None = None
    rtt_ms: float | None = None
    loss: float | None = None
    line_drops: int = 0
    drops_per_hearing: float | None = None
    station_reports: int = 0


@dataclass
class Statistics:
    court_id: str
    court_name: str
    start: date
    end: date
    station_id: str | None
    cause: str | None
    scheduled: int = 0
    cancelled: int = 0
    held: int = 0
    hearings: int = 0
    mediations: int = 0
    by_court: list[GroupRow] = field(default_factory=list)
    by_station: list[GroupRow] = field(default_factory=list)
    by_judge: list[GroupRow] = field(default_factory=list)
    by_cause: list[GroupRow] = field(default_factory=list)
    mediation: MediationFigures = field(default_factory=MediationFigures)
    resolution: ResolutionFigures = field(default_factory=ResolutionFigures)
    recordings: RecordingFigures = field(default_factory=RecordingFigures)
    attendance: AttendanceFigures = field(default_factory=AttendanceFigures)
    stations: list[StationQuality] = field(default_factory=list)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _held(events: Sequence[HearingEvent]) -> bool:
    return any(
        e.kind == EventKind.HEARING_STATE and e.data.get("to") == HearingState.IN_SESSION.value
        for e in events
    )


def _closed_at(events: Sequence[HearingEvent]) -> datetime | None:
    return next(
        (
            e.at
            for e in events
            if e.kind == EventKind.HEARING_STATE and e.data.get("to") == HearingState.CLOSED.value
        ),
        None,
    )


def _recording_ok(events: Sequence[HearingEvent]) -> bool:
    sealed = [e for e in events if e.kind == EventKind.RECORDING_SEALED]
    if not sealed or any(e.data.get("status") != "complete" for e in sealed):
        return False
    if any(e.kind in (EventKind.RECORDING_PROBLEM, EventKind.RECORDING_DISPUTED) for e in events):
        return False
    return any(
        e.kind == EventKind.RECORDING_CONFIRMED and e.data.get("matches") is True for e in events
    )


def _measured(self_test: dict[str, Any] | None) -> tuple[float | None, float | None]:
    """Round trip (ms) and loss of the self-test's network check, as measured."""
    for item in (self_test or {}).get("items", []):
        if isinstance(item, dict) and item.get("check") == "network":
            m = item.get("measured") or {}
            rtt, loss = m.get("rtt_ms"), m.get("loss")
            return (
                float(rtt) if isinstance(rtt, int | float) else None,
                float(loss) if isinstance(loss, int | float) else None,
            )
    return None, None


def _count(row: GroupRow, mode: HearingMode) -> None:
    if mode is HearingMode.MEDIATION:
        row.mediations += 1
    else:
        row.hearings += 1


class StatisticsService:
    """See the module docstring. Raises CourtError (NOT_FOUND, FORBIDDEN, BAD_FIELD)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    def default_filters(self) -> Filters:
        """The last 30 court days, today included."""
        today = self._clock.now().astimezone(COURT_ZONE).date()
        return Filters(start=today - timedelta(days=29), end=today)

    async def compute(self, principal: Principal, court_id: str, filters: Filters) -> Statistics:
        """The figures of one court. Court readers (presiding staff, administrators) of that
        court only; another court is NOT_FOUND, other roles FORBIDDEN."""
        if principal.court_id != court_id:
            raise not_found("court")
        if not isinstance(principal, StaffPrincipal) or principal.role not in COURT_READERS:
            raise forbidden("read the court's statistics")
        if filters.end < filters.start:
            raise CourtError(ErrorCode.BAD_FIELD, "the period ends before it starts", field="to")
        if (filters.end - filters.start).days >= MAX_DAYS:
            raise CourtError(ErrorCode.BAD_FIELD, "the period is longer than 3 years", field="to")
        start = datetime.combine(filters.start, datetime.min.time(), COURT_ZONE)
        end = datetime.combine(filters.end + timedelta(days=1), datetime.min.time(), COURT_ZONE)
        async with self._sessions() as db:
            repo = StatisticsRepository(db)
            court = await repo.court(court_id)
            if court is None:
                raise not_found("court")
            rows = await repo.hearings(
                court_id, start, end, station_id=filters.station_id, cause=filters.cause
            )
            ids = [h.id for h, _ in rows]
            events = await repo.events(ids, [k.value for k in COUNTED])
            people = await repo.participants(ids)
            stations = await repo.stations(court_id)
            users = await repo.users(court_id)
            case_events = await repo.first_events(
                sorted({c.id for _, c in rows}),
                [EventKind.HEARING_STATE.value, EventKind.AGREEMENT_EFFECTIVE.value],
            )
        by_hearing: dict[str, list[HearingEvent]] = defaultdict(list)
        for e in events:
            by_hearing[e.hearing_id].append(e)
        result = Statistics(
            court_id=court_id,
            court_name=court.name,
            start=filters.start,
            end=filters.end,
            station_id=filters.station_id,
            cause=filters.cause,
        )
        station_names = {s.id: s.name for s, _ in stations}
        held = [(h, c) for h, c in rows if _held(by_hearing[h.id])]
        _counts(result, rows, held, station_names, users)
        _mediation(result, rows, by_hearing)
        _resolution(result, rows, case_events)
        _recordings(result, held, by_hearing)
        _attendance(result, held, by_hearing, people)
        _stations(result, held, by_hearing, people, stations, filters.station_id)
        return result


def _counts(
    result: Statistics,
    rows: Sequence[tuple[Hearing, Case]],
    held: Sequence[tuple[Hearing, Case]],
    station_names: dict[str, str],
    users: dict[str, Any],
) -> None:
    """Scheduled, cancelled, held; held by mode per court, station, judge and cause."""
    result.scheduled = len(rows)
    result.cancelled = sum(
        1 for h, _ in rows if h.state is HearingState.CLOSED and h.cancel_reason is not None
    )
    result.held = len(held)
    court = GroupRow(result.court_id, result.court_name)
    by_station: dict[str | None, GroupRow] = {}
    by_judge: dict[str, GroupRow] = {}
    by_cause: dict[str | None, GroupRow] = {}
    for h, c in held:
        mode = c.mode
        _count(court, mode)
        station = by_station.setdefault(
            h.station_id,
            GroupRow(h.station_id, station_names.get(h.station_id or "", "")),
        )
        _count(station, mode)
        user = users.get(h.presiding_user_id)
        judge = by_judge.setdefault(
            h.presiding_user_id,
            GroupRow(h.presiding_user_id, user.display_name if user else ""),
        )
        _count(judge, mode)
        _count(by_cause.setdefault(c.cause, GroupRow(c.cause, c.cause or "")), mode)
    result.hearings, result.mediations = court.hearings, court.mediations
    result.by_court = [court]
    result.by_station = sorted(by_station.values(), key=lambda r: (r.id is None, r.name))
    result.by_judge = sorted(by_judge.values(), key=lambda r: r.name)
    result.by_cause = sorted(by_cause.values(), key=lambda r: (r.id is None, r.id or ""))


def _mediation(
    result: Statistics,
    rows: Sequence[tuple[Hearing, Case]],
    by_hearing: dict[str, list[HearingEvent]],
) -> None:
    fig = result.mediation
    for h, _ in rows:
        kinds = {e.kind for e in by_hearing[h.id]}
        if EventKind.AGREEMENT_EFFECTIVE in kinds:
            fig.effective += 1
        elif EventKind.MEDIATION_FAILED in kinds:
            fig.failed += 1
    fig.success_rate = _ratio(fig.effective, fig.effective + fig.failed)


def _resolution(
    result: Statistics,
    rows: Sequence[tuple[Hearing, Case]],
    case_events: Sequence[tuple[str, HearingEvent]],
) -> None:
    cases = {c.id: c for _, c in rows}
    entries: dict[str, list[HearingEvent]] = defaultdict(list)
    by_case_hearing: dict[tuple[str, str], list[HearingEvent]] = defaultdict(list)
    for case_id, e in case_events:
        entries[case_id].append(e)
        by_case_hearing[(case_id, e.hearing_id)].append(e)
    days: list[float] = []
    for case_id, case in cases.items():
        resolved: list[datetime] = [
            e.at for e in entries[case_id] if e.kind == EventKind.AGREEMENT_EFFECTIVE
        ]
        if case.mode is not HearingMode.MEDIATION:
            for (cid, _), hearing_events in by_case_hearing.items():
                closed = _closed_at(hearing_events)
                if cid == case_id and closed is not None and _held(hearing_events):
                    resolved.append(closed)
        if resolved:
            days.append((min(resolved) - case.created_at).total_seconds() / 86400)
    fig = result.resolution
    fig.cases, fig.resolved = len(cases), len(days)
    if days:
        fig.mean_days = round(pystats.fmean(days), 2)
        fig.median_days = round(pystats.median(days), 2)


def _recordings(
    result: Statistics,
    held: Sequence[tuple[Hearing, Case]],
    by_hearing: dict[str, list[HearingEvent]],
) -> None:
    fig = result.recordings
    fig.held = len(held)
    fig.complete_and_verified = sum(1 for h, _ in held if _recording_ok(by_hearing[h.id]))
    fig.share = _ratio(fig.complete_and_verified, fig.held)


def _attendance(
    result: Statistics,
    held: Sequence[tuple[Hearing, Case]],
    by_hearing: dict[str, list[HearingEvent]],
    people: Sequence[Any],
) -> None:
    fig = result.attendance
    held_ids = {h.id for h, _ in held}
    arrived = {
        str(e.data.get("participant_id"))
        for h in held_ids
        for e in by_hearing[h]
        if e.kind in ARRIVALS
    }
    fig.no_shows = sum(
        1
        for p in people
        if p.hearing_id in held_ids and p.role in ATTENDING_ROLES and p.id not in arrived
    )
    causes: Counter[str] = Counter()
    for h in held_ids:
        for e in by_hearing[h]:
            if e.kind != EventKind.PARTICIPANT_DEPARTED or e.data.get("cause") == "JUDGE_ENDED":
                continue
            causes[str(e.data.get("cause"))] += 1
            if e.data.get("excused") is True:
                fig.excused_departures += 1
            else:
                fig.unexcused_departures += 1
    fig.by_cause = dict(sorted(causes.items()))


def _stations(
    result: Statistics,
    held: Sequence[tuple[Hearing, Case]],
    by_hearing: dict[str, list[HearingEvent]],
    people: Sequence[Any],
    stations: Sequence[tuple[Any, Any]],
    only: str | None,
) -> None:
    station_of = {p.id: p.station_id for p in people if p.station_id is not None}
    for station, status in stations:
        if only is not None and station.id != only:
            continue
        own = [h for h, _ in held if h.station_id == station.id]
        q = StationQuality(station.id, station.name, held=len(own))
        if status is not None and status.self_test:
            q.self_test_overall = str(
                status.self_test.get("overall") or overall_score(status.self_test.get("items", []))
            )
            q.self_test_at = status.self_test_at
            q.rtt_ms, q.loss = _measured(status.self_test)
        for h in own:
            for e in by_hearing[h.id]:
                if (
                    e.kind == EventKind.PARTICIPANT_DEPARTED
                    and e.data.get("cause") in LINE_CAUSES
                    and station_of.get(str(e.data.get("participant_id"))) == station.id
                ):
                    q.line_drops += 1
                elif e.kind == EventKind.STATION_REPORT:
                    q.station_reports += 1
        q.drops_per_hearing = round(q.line_drops / q.held, 2) if q.held else None
        result.stations.append(q)


# ---- the CSV export: the same figures, one per line --------------------------------------------

CSV_HEADER = ("section", "id", "name", "metric", "value")


def _value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.isoformat()
    return str(v)


def figure_rows(s: Statistics) -> Iterator[tuple[str, str, str, str, str]]:
    """Every figure as (section, id, name, metric, value): what the CSV holds, line by line."""
    for metric in ("scheduled", "cancelled", "held", "hearings", "mediations"):
        yield ("totals", s.court_id, s.court_name, metric, _value(getattr(s, metric)))
    for section, groups in (
        ("by_court", s.by_court),
        ("by_station", s.by_station),
        ("by_judge", s.by_judge),
        ("by_cause", s.by_cause),
    ):
        for g in groups:
            for metric in ("hearings", "mediations"):
                yield (section, g.id or "", g.name, metric, _value(getattr(g, metric)))
    for section, fig in (
        ("mediation", s.mediation),
        ("resolution", s.resolution),
        ("recordings", s.recordings),
    ):
        for metric, value in vars(fig).items():
            yield (section, "", "", metric, _value(value))
    att = s.attendance
    for metric in ("no_shows", "excused_departures", "unexcused_departures"):
        yield ("attendance", "", "", metric, _value(getattr(att, metric)))
    for cause, n in att.by_cause.items():
        yield ("departures_by_cause", cause, cause, "departures", str(n))
    for q in s.stations:
        for metric in (
            "held",
            "self_test_overall",
            "self_test_at",
            "rtt_ms",
            "loss",
            "line_drops",
            "drops_per_hearing",
            "station_reports",
        ):
            yield ("station_quality", q.station_id, q.name, metric, _value(getattr(q, metric)))


def to_csv(s: Statistics) -> str:
    """The figures as CSV (UTF-8; the caller adds a BOM so that spreadsheet programs read the
    Chinese names), with the period and filters in a first comment-free header block."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    writer.writerow(("period", "", "", "start", s.start.isoformat()))
    writer.writerow(("period", "", "", "end", s.end.isoformat()))
    writer.writerow(("filter", "", "", "station_id", s.station_id or ""))
    writer.writerow(("filter", "", "", "cause", s.cause or ""))
    writer.writerows(figure_rows(s))
    return out.getvalue()
