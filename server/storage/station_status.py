"""SQL for what station PCs report about themselves (issue 14); see server/hearings/stations.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.storage.models import StationStatus


class StationStatusRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, station_id: str) -> StationStatus | None:
        return await self._session.get(StationStatus, station_id)

    async def list(self, station_ids: Sequence[str]) -> Sequence[StationStatus]:
        result = await self._session.scalars(
            select(StationStatus).where(StationStatus.station_id.in_(station_ids))
        )
        return result.all()

    async def record(
        self,
        station_id: str,
        *,
        at: datetime,
        pending_backups: int,
        self_test: dict[str, Any] | None,
    ) -> StationStatus:
        """The station was seen now; a new self-test replaces the last one (None keeps it)."""
        row = await self._session.get(StationStatus, station_id, with_for_update=True)
        if row is None:
            row = StationStatus(station_id=station_id, last_seen_at=at, pending_backups=0)
            self._session.add(row)
        row.last_seen_at = at
        row.pending_backups = pending_backups
        if self_test is not None:
            row.self_test, row.self_test_at = self_test, at
        await self._session.flush()
        return row
