"""Who may read and who may manage a hearing: the checks every hearing service starts with.

Authorization is decided in the trusted layer, for every call (ASVS 8.3.1), from the principal
and the rows involved:

- presiding staff (judge, clerk, mediator) manage everything of their own court;
- an administrator reads everything of their own court;
- a station director reads the hearings held at the stations they direct;
- a station reads its own hearings;
- a party reads only its own hearing.

Anything outside a principal's court (or own hearing) is NOT_FOUND, exactly as if it did not
exist, so that ids cannot be probed. Inside the court, a role that may see a thing but not
change it gets FORBIDDEN.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principals import PartyPrincipal, Principal, StaffPrincipal, StationPrincipal
from server.enums import PRESIDING_STAFF, StaffRole
from server.errors import CourtError, ErrorCode, not_found
from server.ids import HearingId
from server.storage.models import Hearing
from server.storage.repositories import HearingRepository, StationRepository


def forbidden(action: str) -> CourtError:
    return CourtError(ErrorCode.FORBIDDEN, f"your role may not {action}")


def require_presiding(principal: Principal, action: str) -> StaffPrincipal:
    """The principal if it is presiding staff; FORBIDDEN otherwise."""
    if isinstance(principal, StaffPrincipal) and principal.role in PRESIDING_STAFF:
        return principal
    raise forbidden(action)


async def readable_hearing(
    db: AsyncSession, principal: Principal, hearing_id: HearingId, *, lock: bool = False
) -> Hearing:
    """Load a hearing the principal may read; NOT_FOUND for everything else."""
    hearing = await HearingRepository(db).get(hearing_id, lock=lock)
    if hearing is None or hearing.court_id != principal.court_id:
        raise not_found("hearing")
    if isinstance(principal, PartyPrincipal):
        if hearing.id != principal.hearing_id:
            raise not_found("hearing")
    elif isinstance(principal, StationPrincipal):
        if hearing.station_id != principal.station_id:
            raise not_found("hearing")
    elif principal.role is StaffRole.STATION_DIRECTOR:
        directed = await StationRepository(db).list_for_director(principal.user_id)
        if hearing.station_id not in {s.id for s in directed}:
            raise not_found("hearing")
    return hearing


async def managed_hearing(
    db: AsyncSession,
    principal: Principal,
    hearing_id: HearingId,
    action: str,
    *,
    lock: bool = False,
) -> tuple[StaffPrincipal, Hearing]:
    """A hearing the principal may manage (NOT_FOUND if unreadable, FORBIDDEN if only read)."""
    hearing = await readable_hearing(db, principal, hearing_id, lock=lock)
    return require_presiding(principal, action), hearing
