"""Usage metering: events per request, the batch writer, quotas, and reports.

UsageEvent / event_from_request   what one request consumed
UsageWriter                        record() on the request path; batches to Postgres
QuotaChecker                       daily and monthly token quotas, checked from memory
routes.router / cli.usage          GET /admin/usage and `gateway usage`
"""

from gateway.usage.event import UsageEvent, event_from_request
from gateway.usage.quota import QuotaChecker
from gateway.usage.writer import UsageWriter

__all__ = ["QuotaChecker", "UsageEvent", "UsageWriter", "event_from_request"]
