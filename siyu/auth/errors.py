"""Errors of the auth domain."""

from siyu.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized


class InvalidApiKey(Unauthorized):
    code = "invalid_api_key"


class LoginFailed(Unauthorized):
    code = "login_failed"


class RoleForbidden(Forbidden):
    code = "role_forbidden"


class ScopeForbidden(Forbidden):
    code = "scope_forbidden"


class UserExists(Conflict):
    code = "user_exists"


class UserNotFound(NotFound):
    code = "user_not_found"


class InvalidUser(InvalidInput):
    code = "invalid_user"
