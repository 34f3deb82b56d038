"""Configuration: strict keys, environment overrides, secrets only from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ConfigError, load_config


def test_defaults_give_embedded_sqlite_under_data_dir(tmp_path: Path) -> None:
    config = load_config(environ={}, overrides={"data_dir": str(tmp_path)})
    assert config.database_url == f"sqlite+aiosqlite:///{tmp_path / 'shared-court.db'}"
    assert config.server.base_url == "http://127.0.0.1:8080"
    assert config.server.secure_cookies is False


def test_file_and_environment_override_in_order(tmp_path: Path) -> None:
    path = tmp_path / "court.toml"
    path.write_text('[server]\nport = 9000\nhost = "192.0.2.10"\n[sfu]\nworkers = 2\n')
    config = load_config(
        path, environ={"SHARED_COURT_SERVER__PORT": "9100", "SHARED_COURT_SFU__WORKERS": "1"}
    )
    assert (config.server.host, config.server.port, config.sfu.workers) == ("192.0.2.10", 9100, 1)


@pytest.mark.parametrize(
    ("toml", "environ", "message"),
    [
        ("[server]\nprot = 9000\n", {}, "server.prot: unknown key"),
        ("[sevrer]\nport = 9000\n", {}, "sevrer: unknown key"),
        ("", {"SHARED_COURT_SERVER__PROT": "1"}, "server.prot: unknown key"),
        ("[server]\nport = 'eighty'\n", {}, "server.port"),
        ("[server]\nport = 70000\n", {}, "server.port"),
        ('[database]\nurl = "mysql://x"\n', {}, "database.url"),
        ("[server\nport = 1\n", {}, "not valid TOML"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(
    tmp_path: Path, toml: str, environ: dict[str, str], message: str
) -> None:
    path = tmp_path / "court.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ)
    assert message in str(info.value)


def test_secrets_come_from_files_and_postgres_password_is_injected(tmp_path: Path) -> None:
    secret = tmp_path / "pg-password"
    secret.write_text("s3cret/pass\n")
    config = load_config(
        environ={},
        overrides={
            "database": {
                "url": "postgresql+asyncpg://court@127.0.0.1:5432/court",
                "password_file": str(secret),
            }
        },
    )
    assert config.database_url == "postgresql+asyncpg://court:s3cret%2Fpass@127.0.0.1:5432/court"
    assert "s3cret" not in repr(config)
    with pytest.raises(ConfigError, match="cannot read secret file"):
        load_config(environ={}, overrides={"ice": {"turn_secret_file": str(tmp_path / "nope")}})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(environ={}, overrides={"ice": {"turn_secret_file": str(empty)}})


def test_timestamping_is_typed_and_strict(tmp_path: Path) -> None:
    from tests.recordings.local_tsa import make_tsa_files

    files = make_tsa_files(tmp_path / "tsa")
    path = tmp_path / "court.toml"
    path.write_text(
        "[recording.timestamping]\n"
        'url = "https://tsa.example.cn/tsa"\n'
        f'ca_files = ["{files.ca_cert}"]\n'
        "every_checkpoints = 5\ntimeout_s = 3.5\n"
    )
    ts = load_config(path, environ={}).recording.timestamping
    assert (ts.url, ts.every_checkpoints, ts.timeout_s, ts.attempts) == (
        "https://tsa.example.cn/tsa",
        5,
        3.5,
        5,
    )
    assert load_config(environ={}).recording.timestamping.url is None  # off by default
    for toml, message in [
        ("[recording.timestamping]\nurll = 'http://x'\n", "recording.timestamping.urll: unknown"),
        ("[recording.timestamping]\nurl = 'ftp://x'\n", "must start with http"),
        ("[recording.timestamping]\nevery_checkpoints = 0\n", "every_checkpoints"),
        (f"[recording.timestamping]\nca_files = ['{files.tsa_key}']\n", "not an X.509"),
        (f"[recording.timestamping]\nca_files = ['{tmp_path / 'none'}']\n", "cannot read"),
    ]:
        path.write_text(toml)
        with pytest.raises(ConfigError) as info:
            load_config(path, environ={})
        assert message in str(info.value)


def test_timestamping_reaches_the_workers_writer_settings(tmp_path: Path) -> None:
    """recording.timestamping becomes the TsaConfig the SFU worker builds the writer with
    (tests/server/recording/test_worker_recording.py runs that path against a real TSA)."""
    from recordings import keygen
    from recordings.timestamps import TsaConfig
    from server.app import recording_settings

    keys = keygen(tmp_path / "keys")
    config = load_config(
        environ={},
        overrides={
            "recording": {
                "signing_key_file": str(keys.signing_private),
                "archive_public_key_files": [str(keys.archive_public)],
                "timestamping": {"url": "http://127.0.0.1:1/tsa", "every_checkpoints": 3},
            }
        },
    )
    settings = recording_settings(config)
    assert settings is not None
    assert settings.tsa is not None
    assert TsaConfig(**settings.tsa) == TsaConfig(
        url="http://127.0.0.1:1/tsa", every=3, timeout=10.0, attempts=5, retry_delay=2.0
    )
    plain = load_config(environ={}, overrides={"recording": config.recording.model_dump()
                                               | {"timestamping": {}}})  # fmt: skip
    settings = recording_settings(plain)
    assert settings is not None
    assert settings.tsa is None
