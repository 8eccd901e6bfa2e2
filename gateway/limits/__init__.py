"""Per-key rate limits: requests and tokens per minute, in-flight slots (see limiter.py)."""

from gateway.limits.admission import Admission, Quota
from gateway.limits.headers import ratelimit_headers
from gateway.limits.limiter import Limiter
from gateway.limits.refusals import RequestTooLarge

__all__ = ["Admission", "Limiter", "Quota", "RequestTooLarge", "ratelimit_headers"]
