"""Errors of the privacy domain."""

from __future__ import annotations

from siyu.errors import InvalidInput, NotFound


class InvalidAuditEntry(InvalidInput):
    code = "invalid_audit_entry"


class InvalidAuditFilter(InvalidInput):
    code = "invalid_audit_filter"


class CustomerGone(NotFound):
    code = "customer_not_found"
