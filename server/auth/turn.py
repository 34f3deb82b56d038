"""ICE server lists for peers, with time-limited TURN credentials (the TURN REST API scheme).

coturn with ``use-auth-secret`` and ``static-auth-secret=S`` accepts
``username = "<unix expiry>:<opaque id>"`` and ``password = base64(HMAC-SHA1(S, username))``
until the expiry. The opaque id carries no personal data (it is a participant id, a random
UUID), so coturn's logs name nobody. Credentials are minted per participant at join time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from server.config import IceConfig, read_secret


def turn_credentials(secret: str, opaque_id: str, expires_at: datetime) -> tuple[str, str]:
    """(username, password) valid until `expires_at` for a coturn sharing `secret`."""
    username = f"{int(expires_at.timestamp())}:{opaque_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


class IceServers:
    """Builds the RTCIceServer list for one participant from the configuration."""

    def __init__(self, config: IceConfig) -> None:
        self._config = config
        # Read once at start-up; load_config has already checked that the file is readable.
        self._secret = read_secret(config.turn_secret_file) if config.turn_secret_file else None

    def __repr__(self) -> str:
        return f"IceServers(servers={len(self._config.servers)}, secret=<redacted>)"

    def for_participant(self, opaque_id: str, now: datetime) -> list[dict[str, Any]]:
        """The list in the browser's RTCConfiguration shape: {urls, username?, credential?}."""
        servers: list[dict[str, Any]] = []
        expires = datetime.fromtimestamp(
            now.timestamp() + self._config.turn_credential_ttl_s, tz=now.tzinfo
        )
        for server in self._config.servers:
            entry: dict[str, Any] = {"urls": list(server.urls)}
            if server.turn_rest and self._secret is not None:
                entry["username"], entry["credential"] = turn_credentials(
                    self._secret, opaque_id, expires
                )
            servers.append(entry)
        return servers
