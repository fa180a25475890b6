"""Errors of the customers domain."""

from siyu.errors import Conflict, InvalidInput, NotFound


class CustomerNotFound(NotFound):
    code = "customer_not_found"


class InvalidIdentity(InvalidInput):
    code = "invalid_identity"


class MergeNotUndoable(Conflict):
    code = "merge_not_undoable"


class ConflictAlreadyResolved(Conflict):
    code = "conflict_already_resolved"
