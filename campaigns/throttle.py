"""Calls per second per carrier account: a token bucket in Redis, shared by every worker process.

Twilio places at most 1 call per second per account by default (up to 30 when approved); the dialer paces
below it so the carrier never queues or rejects its calls.
"""
from __future__ import annotations

from redis import Redis

# KEYS[1] bucket; ARGV: rate (tokens/s), burst, now (s), wanted. Returns the tokens granted (0..wanted).
_TAKE = """
local rate, burst, now, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, at = burst, now end
if now > at then tokens = math.min(burst, tokens + (now - at) * rate); at = now end
local granted = math.min(wanted, math.floor(tokens))
if granted < 0 then granted = 0 end
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return granted
"""


class CallRate:
    """How many calls the account may place now; every process shares one bucket per account."""

    def __init__(self, redis: Redis, account: str, per_second: float, burst: float | None = None) -> None:
        self._redis = redis
        self._key = f"switchboard:dial-rate:{account}"
        self._rate = per_second
        self._burst = burst if burst is not None else max(1.0, per_second)
        self._take = redis.register_script(_TAKE)

    def take(self, wanted: int, now: float) -> int:
        """Take up to `wanted` tokens at time `now` (seconds); return how many were granted."""
        if wanted <= 0:
            return 0
        return int(self._take(keys=[self._key], args=[self._rate, self._burst, now, wanted]))

    def available(self, now: float) -> int:
        """Tokens that a `take` at `now` could grant (without taking them)."""
        tokens, at = self._redis.hmget(self._key, "tokens", "at")
        if tokens is None:
            return int(self._burst)
        return int(min(self._burst, float(tokens) + max(0.0, now - float(at)) * self._rate))
