"""Rate limits counted across all nodes (login and invitation attempts per client address).

A sliding window per key in a Redis sorted set (scored by the Redis server's own clock, so the
nodes' clocks do not matter), trimmed and counted in one Lua script.
"""

from __future__ import annotations

import logging
import secrets

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], window)
return redis.call('ZCARD', KEYS[1])
"""


class SharedRateLimiter:
    """At most `limit` attempts per `window_s` per (name, key), over every node."""

    def __init__(self, redis: Redis, prefix: str, limit: int, window_s: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._limit = limit
        self._window_ms = int(window_s * 1000)
        self._count = redis.register_script(_COUNT)

    async def allow(self, name: str, key: str, fallback: bool) -> bool:
        """Count an attempt; False over the limit (the attempt still counts). While Redis is
        unreachable, `fallback` (this node's own count) decides."""
        try:
            count = await self._count(
                keys=[f"{self._prefix}:limit:{name}:{key}"],
                args=[self._window_ms, secrets.token_hex(8)],
            )
        except (RedisError, OSError) as exc:
            log.warning("shared rate limit unavailable (%s); this node's count decides", exc)
            return fallback
        return int(count) <= self._limit
