"""Admission and metering: the guard every engine call a client causes goes through, and
the pure arithmetic of what a request may cost and what it cost (cost.py)."""
