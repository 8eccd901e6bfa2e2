"""Per-key rate limits: requests and tokens per minute, in-flight slots (see limiter.py)."""

from gateway.limits.admission import Admission, Quota
from gateway.limits.headers import ratelimit_headers
from gateway.limits.limiter import Limiter

__all__ = ["Admission", "Limiter", "Quota", "ratelimit_headers"]
