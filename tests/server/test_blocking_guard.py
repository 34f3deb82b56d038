"""The loop-blocking detector is live: our code reading a file inside the loop fails a test."""

from __future__ import annotations

from pathlib import Path

import pytest
from blockbuster import BlockingError

from server.config import read_secret


async def test_blocking_file_read_in_the_loop_is_caught(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x")
    with pytest.raises(BlockingError):
        read_secret(secret)
