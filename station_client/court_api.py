"""The court's REST API as the station uses it: one method per call, one place for URLs,
cookies and the CSRF header.

The station logs in with its per-station key (`POST /api/auth/station`); the session cookies it
gets are sent with every later call, and a write carries the session's CSRF token in
`X-CSRF-Token` (double submit), a station's too. The calls:

- `login`: `POST /api/auth/station` (the shared station key of `station add`)
- `signed_login`: `POST /api/auth/station/signed` (the station's own key, enrolled with a code)
- `enrol`: `POST /api/station/enrol` (register that key with a one-time code)
- `hearings`: `GET /api/hearings` (the station's hearings)
- `register_backup`: `POST /api/hearings/{id}/station-backups` (a new backup recording and its
  verify key; the court answers with the archive keys to encrypt it for)
- `backup_files`: `GET .../station-backups/{rid}/files` (what has arrived of an upload)
- `put_backup_file`: `PUT .../station-backups/{rid}/files/{name}` (one file, streamed)
- `receive_backup`: `POST .../station-backups/{rid}/receipt` (the court checks and takes it)
- `station_hearings`: `GET /api/station/hearings` (the day: court, case, people expected)
- `report_status`: `POST /api/station/status` (heartbeat, backups waiting, self-test)
- `ping`, `upload_test`: the self-test's network check
- `confirm_recording`: `POST /api/hearings/{id}/recordings/{rid}/confirm` (the hash, at close)
- `check_identity`: `POST /api/station/hearings/{id}/participants/{pid}/identity-check`

Errors: `StationError` when the court refuses the station (login, registration),
`UploadError` when it refuses a backup package; `aiohttp.ClientError` / `OSError` when the
court cannot be reached (try again later). What to do with the answers (which hearing to join,
which files to send) is the caller's business: station_client/app.py and upload.py.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recordings import ArchivePublicKey, RecordingId


class StationError(Exception):
    """The station cannot take part (bad key, no hearing); the message says why."""


class StationDisabled(StationError):
    """The court has disabled this station (it proved to be the station, and was refused)."""


def _refusal(status: int, data: dict[str, Any]) -> StationError:
    details = data.get("details") or {}
    if status == 403 and details.get("reason") == "STATION_DISABLED":
        return StationDisabled("the court has disabled this station")
    return StationError(f"the server refused the station login: {data.get('message')}")


class RecordError(StationError):
    """The court refused a hearing record request (issue 15); `code` is its error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UploadError(Exception):
    """The court refused the package (the message says why); sending it again will not help
    until that is fixed."""


class CourtApi:
    """The court's REST API over one aiohttp session (see the module docstring)."""

    def __init__(self, http: aiohttp.ClientSession, server: str) -> None:
        self.http = http
        self.server = server.rstrip("/")  # base URL, e.g. https://court.example.cn
        self.cookies: dict[str, str] = {}  # the session cookies of the last login

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, server: str) -> AsyncIterator[CourtApi]:
        """A `CourtApi` over a new session, closed on leaving. Its cookie jar is unsafe (keeps
        cookies of a server addressed by IP address, as a court's often is)."""
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            yield cls(http, server)

    def _headers(self) -> dict[str, str]:
        # A cookie session's writes carry its CSRF token (double submit), a station's too.
        return {"X-CSRF-Token": self.cookies.get("sc_csrf", "")}

    def _backup_url(self, hearing_id: str, recording_id: str) -> str:
        return f"{self.server}/api/hearings/{hearing_id}/station-backups/{recording_id}"

    async def login(self, station_id: str, key: str) -> dict[str, str]:
        """Log the station in afresh (the cookies of an earlier session are dropped); returns
        the session cookies. Raises StationError (refused) or aiohttp.ClientError / OSError
        (server unreachable: retry)."""
        self.http.cookie_jar.clear()
        body = {"station_id": station_id, "key": key}
        async with self.http.post(f"{self.server}/api/auth/station", json=body) as resp:
            if resp.status in (400, 401, 403, 404):
                raise _refusal(resp.status, await resp.json(content_type=None))
            resp.raise_for_status()
        self.cookies = {c.key: c.value for c in self.http.cookie_jar}
        return self.cookies

    async def session_alive(self) -> bool:
        """Whether the session of the last login is still open (GET /api/auth/me). A station
        rejoining after a drop keeps its session rather than logging in again: logins count
        against the court's per-address limit, and a village line can drop many times an hour.
        False when there was no login or the court ended the session (expired, the station
        disabled). Raises aiohttp.ClientError / OSError (server unreachable: retry)."""
        if not self.cookies:
            return False
        async with self.http.get(f"{self.server}/api/auth/me") as resp:
            if resp.status == 401:
                return False
            resp.raise_for_status()
            me: dict[str, Any] = await resp.json()
        return "station_id" in (me.get("principal") or {})

    async def signed_login(self, station_id: str, key: Ed25519PrivateKey) -> dict[str, str]:
        """Log in with the station's own key (enrolled with a code): sign the time. Raises
        StationDisabled, StationError (refused) or aiohttp.ClientError / OSError."""
        self.http.cookie_jar.clear()
        at = datetime.now(UTC).isoformat()
        message = f"shared-court station login v1\n{station_id}\n{at}".encode()
        body = {
            "station_id": station_id,
            "at": at,
            "signature": base64.b64encode(key.sign(message)).decode("ascii"),
        }
        url = f"{self.server}/api/auth/station/signed"
        async with self.http.post(url, json=body) as resp:
            if resp.status in (400, 401, 403, 404):
                raise _refusal(resp.status, await resp.json(content_type=None))
            resp.raise_for_status()
        self.cookies = {c.key: c.value for c in self.http.cookie_jar}
        return self.cookies

    async def enrol(self, station_id: str, code: str, public_key_pem: str) -> str:
        """Register the station's public key with a one-time enrolment code; returns the
        key's id. Raises StationDisabled, StationError (refused), aiohttp.ClientError."""
        body = {"station_id": station_id, "code": code, "public_key": public_key_pem}
        async with self.http.post(f"{self.server}/api/station/enrol", json=body) as resp:
            data = await resp.json(content_type=None)
            if resp.status == 403:
                raise _refusal(resp.status, data)
            if resp.status != 200:
                raise StationError(f"the court refused the enrolment: {data.get('message')}")
        return str(data["key_id"])

    async def hearings(self) -> list[dict[str, Any]]:
        """The station's hearings as the court lists them. Raises aiohttp.ClientError (also for
        an error status) / OSError."""
        async with self.http.get(f"{self.server}/api/hearings", cookies=self.cookies) as resp:
            resp.raise_for_status()
            hearings: list[dict[str, Any]] = await resp.json()
        return hearings

    async def register_backup(
        self, hearing_id: str, recording_id: RecordingId, verify_key_pem: str
    ) -> list[ArchivePublicKey]:
        """Tell the court about a new backup recording; returns the archive keys to encrypt it
        for. Raises StationError (refused), aiohttp.ClientError / OSError (unreachable)."""
        url = f"{self.server}/api/hearings/{hearing_id}/station-backups"
        body = {"recording_id": recording_id, "verify_key": verify_key_pem}
        async with self.http.post(
            url, json=body, cookies=self.cookies, headers=self._headers()
        ) as resp:
            data = await resp.json(content_type=None)
            if resp.status not in (200, 201):
                raise StationError(f"the court refused the backup recording: {data.get('message')}")
        return [
            ArchivePublicKey.from_pem(pem, "the court's archive key") for pem in data["recipients"]
        ]

    async def backup_files(self, hearing_id: str, recording_id: str) -> dict[str, str]:
        """What the court holds of an upload: file name -> SHA-256 (hex); empty when it holds
        nothing or will not say. Raises aiohttp.ClientError / OSError, ValueError (an answer
        that is not JSON)."""
        url = f"{self._backup_url(hearing_id, recording_id)}/files"
        async with self.http.get(url, headers=self._headers(), cookies=self.cookies) as resp:
            listing: dict[str, Any] = await resp.json(content_type=None)
            there: dict[str, str] = listing.get("files", {}) if resp.status == 200 else {}
        return there

    async def put_backup_file(
        self, hearing_id: str, recording_id: str, name: str, data: AsyncIterable[bytes]
    ) -> bool:
        """Send one file of a backup package (streamed from `data`); returns False when the
        court has taken the package already (nothing more to send). Raises UploadError
        (refused), aiohttp.ClientError / OSError (the line: try again later)."""
        url = f"{self._backup_url(hearing_id, recording_id)}/files/{name}"
        async with self.http.put(
            url, data=data, headers=self._headers(), cookies=self.cookies
        ) as resp:
            if resp.status != 204:
                body = await resp.json(content_type=None)
                if resp.status == 409:  # the court already has it: nothing more to send
                    return False
                raise UploadError(f"the court refused {name}: {body.get('message')}")
        return True

    async def receive_backup(self, hearing_id: str, recording_id: str) -> dict[str, Any]:
        """Ask the court to take a sent package, which it does only if it verifies against the
        key the station registered; returns the court's receipt. Raises UploadError (not
        taken: the problems found), aiohttp.ClientError / OSError (the line)."""
        url = f"{self._backup_url(hearing_id, recording_id)}/receipt"
        async with self.http.post(url, headers=self._headers(), cookies=self.cookies) as resp:
            receipt: dict[str, Any] = await resp.json(content_type=None)
            if resp.status == 409:  # received before (a receipt lost with a dropped line)
                receipt = {"recording_id": recording_id, "received": True}
            elif resp.status != 201:
                problems = "; ".join(receipt.get("problems") or [str(receipt.get("message"))])
                raise UploadError(f"the court did not take backup {recording_id}: {problems}")
        return receipt

    # -- the station's day (issue 14) -----------------------------------------------------

    async def station_hearings(self) -> list[dict[str, Any]]:
        """The hearings of the day at this station, with court, case and people expected
        (`GET /api/station/hearings`). Raises aiohttp.ClientError / OSError."""
        url = f"{self.server}/api/station/hearings"
        async with self.http.get(url, cookies=self.cookies) as resp:
            resp.raise_for_status()
            hearings: list[dict[str, Any]] = await resp.json()
        return hearings

    async def report_status(
        self, pending_backups: int, self_test: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Tell the court the station is here, how many backups wait, and a self-test result
        (`POST /api/station/status`). Raises aiohttp.ClientError / OSError."""
        body: dict[str, Any] = {"pending_backups": pending_backups}
        if self_test is not None:
            body["self_test"] = self_test
        async with self.http.post(
            f"{self.server}/api/station/status",
            json=body,
            cookies=self.cookies,
            headers=self._headers(),
        ) as resp:
            resp.raise_for_status()
            status: dict[str, Any] = await resp.json()
        return status

    async def ping(self) -> None:
        """One round trip to the court (the network check). Raises aiohttp.ClientError."""
        url = f"{self.server}/api/station/ping"
        async with self.http.get(url, cookies=self.cookies) as resp:
            resp.raise_for_status()
            await resp.read()

    async def upload_test(self, data: bytes) -> int:
        """Send `data` to the court; returns how many bytes it received."""
        async with self.http.post(
            f"{self.server}/api/station/upload-test",
            data=data,
            cookies=self.cookies,
            headers={**self._headers(), "Content-Type": "application/octet-stream"},
        ) as resp:
            resp.raise_for_status()
            body: dict[str, Any] = await resp.json()
        return int(body["received"])

    async def confirm_recording(
        self, hearing_id: str, recording_id: str, root_hash: str, confirmed: bool
    ) -> bool:
        """The people at the station confirm (or dispute) the sealed recording's root hash;
        returns whether it is the court's. Raises StationError (refused), aiohttp.ClientError
        / OSError (unreachable)."""
        url = f"{self.server}/api/hearings/{hearing_id}/recordings/{recording_id}/confirm"
        body = {"root_hash": root_hash, "confirmed": confirmed}
        async with self.http.post(
            url, json=body, cookies=self.cookies, headers=self._headers()
        ) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200:
                raise StationError(f"the court refused the confirmation: {data.get('message')}")
        return bool(data["matches"])

    async def record(
        self,
        hearing_id: str,
        method: str,
        kind: str,
        tail: str = "",
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A hearing record request (issue 15: read a document, a signing code, a signature or
        refusal for someone checked in person here). Raises RecordError (refused, with the
        court's code), aiohttp.ClientError / OSError (unreachable)."""
        url = f"{self.server}/api/hearings/{hearing_id}/record/{kind}" + (
            f"/{tail}" if tail else ""
        )
        async with self.http.request(
            method, url, json=body, cookies=self.cookies, headers=self._headers()
        ) as resp:
            data: dict[str, Any] = await resp.json(content_type=None)
            if resp.status != 200:
                raise RecordError(str(data.get("code")), str(data.get("message")))
        return data

    async def check_identity(
        self, hearing_id: str, participant_id: str, name: str, id_digits: str, note: str = ""
    ) -> str:
        """The director checked in person the identity of someone present at the station;
        returns their state. Raises StationError (refused: the message says why),
        aiohttp.ClientError / OSError."""
        url = (
            f"{self.server}/api/station/hearings/{hearing_id}/participants/"
            f"{participant_id}/identity-check"
        )
        body = {"name": name, "id_digits": id_digits, "note": note}
        async with self.http.post(
            url, json=body, cookies=self.cookies, headers=self._headers()
        ) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200:
                raise StationError(str(data.get("code") or data.get("message")))
        return str(data["state"])
