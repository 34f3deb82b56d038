"""SQL for what station PCs report about themselves (issue 14); see server/hearings/stations.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.storage.models import StationEnrolmentCode, StationKey, StationStatus, WebSession


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


class StationKeyRepository:
    """Station keys, enrolment codes and the station's sessions (for disabling it)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def key(self, station_id: str, *, lock: bool = False) -> StationKey | None:
        return await self._session.get(StationKey, station_id, with_for_update=lock)

    async def set_key(self, station_id: str, public_key: str, key_id: str, at: datetime) -> None:
        row = await self.key(station_id, lock=True)
        if row is None:
            self._session.add(
                StationKey(
                    station_id=station_id, public_key=public_key, key_id=key_id, enrolled_at=at
                )
            )
        else:
            row.public_key, row.key_id, row.enrolled_at = public_key, key_id, at
            row.last_login_at = None
        await self._session.flush()

    async def add_code(self, code: StationEnrolmentCode) -> None:
        self._session.add(code)
        await self._session.flush()

    async def code(self, code_hash: bytes) -> StationEnrolmentCode | None:
        return await self._session.scalar(
            select(StationEnrolmentCode)
            .where(StationEnrolmentCode.code_hash == code_hash)
            .with_for_update()
        )

    async def open_session_ids(self, station_id: str) -> list[str]:
        result = await self._session.scalars(
            select(WebSession.id).where(
                WebSession.station_id == station_id, WebSession.revoked_at.is_(None)
            )
        )
        return list(result.all())

    async def revoke_sessions(self, session_ids: Sequence[str], at: datetime) -> None:
        if session_ids:
            await self._session.execute(
                update(WebSession).where(WebSession.id.in_(session_ids)).values(revoked_at=at)
            )
