"""Errors of the auth domain."""

from siyu.errors import Conflict, Forbidden, InvalidInput, NotFound, SiyuError, Unauthorized


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


class LoginThrottled(SiyuError):
    status_code = 429
    code = "login_throttled"


class LastAdmin(Conflict):
    code = "last_admin"


class InvalidTotp(InvalidInput):
    code = "invalid_totp"
