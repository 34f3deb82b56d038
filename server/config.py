"""One typed, strict configuration.

Sources, later ones winning: defaults in code, a TOML file (``--config`` or
``SHARED_COURT_CONFIG``), then environment variables ``SHARED_COURT_<SECTION>__<KEY>``
(e.g. ``SHARED_COURT_SERVER__PORT=9000``). Unknown keys in the file or unknown
``SHARED_COURT_*`` variables stop start-up with a message naming them: a typo in a court's
configuration must not silently fall back to a default.

Secrets are never values in the file or the environment: only paths (``*_file``) whose
contents are read at start-up. Objects holding secrets redact themselves in ``repr``.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)

ENV_PREFIX = "SHARED_COURT_"
ENV_CONFIG_FILE = "SHARED_COURT_CONFIG"


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The URL people reach the server on; invitation links are built from it.
    public_url: str | None = None
    # Serve HTTPS directly (behind a TLS proxy leave these unset and set public_url to https://).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Reverse proxies (and, in a cluster, the other nodes) whose X-Forwarded-For is believed:
    # addresses or networks (CIDR). A request from one of them counts against the limits of
    # the client it forwards for; from anyone else, the header is ignored.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_cert_file else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")


class DatabaseConfig(_Section):
    # None means the embedded SQLite database under data_dir.
    url: str | None = None
    # PostgreSQL password, read from this file and put into the URL at start-up.
    password_file: Path | None = None
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _driver(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "database.url must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value


class IceServer(_Section):
    urls: list[str]
    # Static credentials are not supported on purpose: TURN uses time-limited REST credentials.
    turn_rest: bool = False


class IceConfig(_Section):
    servers: list[IceServer] = Field(default_factory=list)
    # coturn `static-auth-secret`, read from this file (TURN REST API scheme).
    turn_secret_file: Path | None = None
    turn_credential_ttl_s: int = Field(default=6 * 3600, ge=60)
    # Local addresses the SFU offers as host candidates. Empty: all non-loopback addresses.
    host_addresses: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _turn_rest_needs_secret(self) -> IceConfig:
        if any(s.turn_rest for s in self.servers) and self.turn_secret_file is None:
            raise ValueError("ice.servers has turn_rest entries but ice.turn_secret_file is unset")
        return self


class SecurityConfig(_Section):
    session_idle_timeout_s: int = Field(default=2 * 3600, ge=60)
    session_absolute_timeout_s: int = Field(default=12 * 3600, ge=60)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_s: int = Field(default=15 * 60, ge=1)
    login_ip_attempts_per_minute: int = Field(default=20, ge=1)
    invitation_validity_s: int = Field(default=14 * 24 * 3600, ge=60)


class SignalingConfig(_Section):
    # Clients send a heartbeat this often; three missed intervals end the connection with
    # HEARTBEAT_LOST (evidence that the line, not the person, went away).
    heartbeat_interval_s: int = Field(default=10, ge=1, le=300)
    # Whether a party may skip the device check before the waiting room (issue 13).
    device_check_skippable: bool = True
    # Per client address (server/web/floods.py): open signaling sockets, and messages per
    # second shared by all of them (burst twice that). A village station or a court's NAT puts
    # a few people behind one address; a flood from one host is cut off here.
    max_sockets_per_address: int = Field(default=100, ge=1, le=1_000_000)
    messages_per_address_per_s: float = Field(default=200.0, gt=0, le=1_000_000)


class SfuConfig(_Section):
    # 0 = one worker per core.
    workers: int = Field(default=0, ge=0)


class TimestampingConfig(_Section):
    """RFC 3161 time anchors of recordings (docs/configuration.md, "Time-stamping"). Off while
    `url` is unset."""

    # The Time-Stamping Authority's HTTP(S) endpoint (RFC 3161 over application/timestamp-query).
    url: str | None = None
    # The TSA's CA certificate(s) (PEM), given to auditors with `verify --tsa-ca`; checked to be
    # readable certificates at start-up so a court notices a wrong file before a hearing.
    ca_files: list[Path] = Field(default_factory=list)
    # Stamp every Nth checkpoint (checkpoints come every 2 s; 15 = one token per 30 s); the
    # manifest is always stamped.
    every_checkpoints: int = Field(default=15, ge=1, le=10_000)
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    attempts: int = Field(default=5, ge=1, le=100)
    retry_delay_s: float = Field(default=2.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("recording.timestamping.url must start with http:// or https://")
        return value


class RecordingConfig(_Section):
    enabled: bool = True
    # Archive public key(s) (X25519 PEM) that recordings are encrypted for.
    archive_public_key_files: list[Path] = Field(default_factory=list)
    # Ed25519 private key (PEM) the server signs checkpoints and manifests with.
    signing_key_file: Path | None = None
    # X25519 private key (PEM) of the playback service. When set, its public half is one more
    # recipient of every new recording, so presiding staff can play recordings back in the
    # browser; without it only an archive key holder can (`shared-court export`).
    playback_key_file: Path | None = None
    # Decrypted playback copies are deleted when unused this long, and at every start-up.
    playback_cache_ttl_s: int = Field(default=3600, ge=60, le=86_400)
    timestamping: TimestampingConfig = Field(default_factory=TimestampingConfig)


class ClusterConfig(_Section):
    """Several nodes on one PostgreSQL and one Redis (docs/deployment.md, "A cluster"). Off
    while `redis_url` is unset: one node works alone, as before."""

    # redis://host:port/db (or rediss:// for TLS). Unset: no cluster.
    redis_url: str | None = None
    # This node's name in the cluster; unset: the host name and the port.
    node_id: str | None = None
    # Where the other nodes reach this node's HTTP/WebSocket (never through the public proxy),
    # e.g. http://10.0.0.5:8080. Unset: http://<server.host>:<server.port>.
    internal_url: str | None = None
    # The node reports its load this often; it counts as dead after `heartbeat_misses` reports
    # are missed, and its hearings are placed again on a live node.
    heartbeat_interval_s: float = Field(default=2.0, gt=0, le=60)
    heartbeat_misses: int = Field(default=3, ge=2, le=20)
    # Redis key prefix, so that several courts may share one Redis.
    key_prefix: str = Field(default="sc", min_length=1, max_length=32)

    @field_validator("redis_url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("cluster.redis_url must start with redis://, rediss:// or unix://")
        return value


class Config(_Section):
    data_dir: Path = Path("var")
    server: ServerConfig = Field(default_factory=ServerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    ice: IceConfig = Field(default_factory=IceConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    signaling: SignalingConfig = Field(default_factory=SignalingConfig)
    sfu: SfuConfig = Field(default_factory=SfuConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL, with the password from ``password_file`` filled in."""
        url = self.database.url or f"sqlite+aiosqlite:///{self.data_dir / 'shared-court.db'}"
        if self.database.password_file is not None:
            from sqlalchemy.engine import make_url

            password = read_secret(self.database.password_file)
            return make_url(url).set(password=password).render_as_string(hide_password=False)
        return url


def read_secret(path: Path) -> str:
    """Read a secret from a file (first line, whitespace stripped).

    Raises ConfigError if it cannot be read or is empty; the message never holds the secret.
    """
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read secret file {path}: {exc.strerror}") from exc
    if not text:
        raise ConfigError(f"secret file {path} is empty")
    return text


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Turn SHARED_COURT_SECTION__KEY=value into nested dict entries.

    Values are parsed as JSON when they parse (numbers, booleans, lists), else taken as text.
    """
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_FILE:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            raise ConfigError(f"malformed configuration variable {name}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"configuration variable {name} conflicts with another")
        node[path[-1]] = value
    return tree


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(exc: ValidationError, origin: str) -> str:
    lines = [f"invalid configuration ({origin}):"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        else:
            lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)


def load_config(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration from file, environment and explicit overrides.

    Raises ConfigError with a readable message for unreadable files, bad TOML, unknown keys
    and invalid values.
    """
    environ = os.environ if environ is None else environ
    if path is None and environ.get(ENV_CONFIG_FILE):
        path = Path(environ[ENV_CONFIG_FILE])
    data: dict[str, Any] = {}
    origin = "defaults"
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc
        origin = str(path)
    data = _merge(data, _env_overrides(environ))
    if overrides:
        data = _merge(data, overrides)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin + " + environment")) from None
    for secret_file in (config.ice.turn_secret_file, config.database.password_file):
        if secret_file is not None:
            read_secret(secret_file)
    _check_certificates(config.recording.timestamping.ca_files)
    return config


def _check_certificates(paths: list[Path]) -> None:
    """Raises ConfigError unless every file holds at least one X.509 certificate."""
    from cryptography import x509

    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read certificate file {path}: {exc.strerror}") from exc
        try:
            if b"-----BEGIN" in data:
                x509.load_pem_x509_certificates(data)
            else:
                x509.load_der_x509_certificate(data)
        except ValueError as exc:
            raise ConfigError(f"{path} is not an X.509 certificate file: {exc}") from exc
