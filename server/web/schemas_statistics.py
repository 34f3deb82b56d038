"""Request and response bodies of the court's quality-and-efficiency view (issue 15.4):
server/web/api_statistics.py. Definitions of every figure: server/hearings/statistics.py."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from server.hearings.causes import CauseCode
from server.web.schemas import Response


class StatisticsQuery(BaseModel):
    """The query string: `from` and `to` are court days (Asia/Shanghai), both included."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: date | None = Field(default=None, alias="from")
    end: date | None = Field(default=None, alias="to")
    station_id: Annotated[str, StringConstraints(max_length=36)] | None = None
    cause: CauseCode | None = None


class StatGroupOut(Response):
    id: str | None = Field(description="Court, station, user id or cause code; null: none")
    name: str
    hearings: int = Field(description="Held hearings of cases in hearing mode")
    mediations: int = Field(description="Held hearings of cases in mediation mode")


class StatMediationOut(Response):
    effective: int
    failed: int
    success_rate: float | None = Field(description="effective / (effective + failed)")


class StatResolutionOut(Response):
    cases: int
    resolved: int
    mean_days: float | None
    median_days: float | None


class StatRecordingOut(Response):
    held: int
    complete_and_verified: int
    share: float | None


class StatAttendanceOut(Response):
    no_shows: int
    excused_departures: int
    unexcused_departures: int
    by_cause: dict[str, int]


class StatStationQualityOut(Response):
    station_id: str
    name: str
    held: int
    self_test_overall: str | None
    self_test_at: datetime | None
    rtt_ms: float | None
    loss: float | None
    line_drops: int
    drops_per_hearing: float | None
    station_reports: int


class StatisticsOut(Response):
    court_id: str
    court_name: str
    start: date
    end: date
    station_id: str | None
    cause: str | None
    scheduled: int
    cancelled: int
    held: int
    hearings: int
    mediations: int
    by_court: list[StatGroupOut]
    by_station: list[StatGroupOut]
    by_judge: list[StatGroupOut]
    by_cause: list[StatGroupOut]
    mediation: StatMediationOut
    resolution: StatResolutionOut
    recordings: StatRecordingOut
    attendance: StatAttendanceOut
    stations: list[StatStationQualityOut]
