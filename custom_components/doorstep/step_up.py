"""The facts behind "is this a person, now": Home Assistant's login session, password and TOTP.

The rule itself is ``sharing.approval`` (free of Home Assistant); this module only reads
what it needs from Home Assistant's auth manager and checks a proof with Home Assistant's
own ``homeassistant`` auth provider and ``totp`` MFA module, never a copy of either.

Other two-factor modules (Home Assistant's ``notify``, which sends a one-time code
through a notify service, or a custom one) are not run here: a person whose only second
factor is one of those is refused with ``step_up_mfa_unsupported`` rather than checked
on the password alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.auth.models import (
    TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN,
    TOKEN_TYPE_NORMAL,
    TOKEN_TYPE_SYSTEM,
    User,
)
from homeassistant.auth.providers.homeassistant import HassAuthProvider, InvalidAuth
from homeassistant.core import HomeAssistant

from .sharing import SessionKind, StepUpFacts

TOTP_MODULE = "totp"
_SESSION_KINDS = {
    TOKEN_TYPE_NORMAL: SessionKind.NORMAL,
    TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN: SessionKind.LONG_LIVED,
    TOKEN_TYPE_SYSTEM: SessionKind.SYSTEM,
}


@dataclass(frozen=True, slots=True)
class _Login:
    """Where a user's Home Assistant password lives: the provider and the username."""

    provider: HassAuthProvider
    username: str


def session_kind(hass: HomeAssistant, refresh_token_id: str | None) -> SessionKind:
    """The kind of the refresh token behind a connection; NONE without one."""
    if refresh_token_id is None:
        return SessionKind.NONE
    token = hass.auth.async_get_refresh_token(refresh_token_id)
    if token is None:
        return SessionKind.NONE
    return _SESSION_KINDS.get(token.token_type, SessionKind.NONE)


async def _password_login(hass: HomeAssistant, user: User) -> _Login | None:
    """The user's Home Assistant (username and password) login, if they have one."""
    for credential in user.credentials:
        if credential.auth_provider_type != "homeassistant":
            continue
        provider = hass.auth.get_auth_provider("homeassistant", credential.auth_provider_id)
        username = credential.data.get("username")
        if not isinstance(provider, HassAuthProvider) or not isinstance(username, str):
            continue
        if provider.data is None:
            await provider.async_initialize()
        assert provider.data is not None
        wanted = provider.data.normalize_username(username)
        if any(
            provider.data.normalize_username(entry["username"]) == wanted
            for entry in provider.data.users
        ):
            return _Login(provider, username)
    return None


async def has_totp(hass: HomeAssistant, user: User) -> bool:
    """Whether the user has set up TOTP two-factor login."""
    module = hass.auth.get_auth_mfa_module(TOTP_MODULE)
    return module is not None and await module.async_is_user_setup(user.id)


async def other_mfa_modules(hass: HomeAssistant, user: User) -> list[str]:
    """Ids of the two-factor modules other than TOTP that the user has set up."""
    enabled = await hass.auth.async_get_enabled_mfa(user)
    return sorted(module_id for module_id in enabled if module_id != TOTP_MODULE)


async def has_password(hass: HomeAssistant, user: User) -> bool:
    """Whether the user can log in with a Home Assistant password (not, say, trusted networks)."""
    return await _password_login(hass, user) is not None


async def async_step_up_facts(
    hass: HomeAssistant,
    user: User,
    refresh_token_id: str | None,
    *,
    code_given: bool,
    is_read_only: bool,
) -> StepUpFacts:
    """Everything the approval rule needs to know before any proof is checked."""
    return StepUpFacts(
        session=session_kind(hass, refresh_token_id),
        user_id=user.id,
        is_active=user.is_active,
        is_admin=user.is_admin,
        is_system=user.system_generated,
        is_read_only=is_read_only,
        has_password=await has_password(hass, user),
        has_totp=await has_totp(hass, user),
        has_other_mfa=bool(await other_mfa_modules(hass, user)),
        code_given=code_given,
    )


async def async_check_proof(
    hass: HomeAssistant, user: User, password: str, code: str | None
) -> tuple[bool, bool]:
    """(password right, code right), checked by Home Assistant's own provider and module.

    Both are always checked when given, so how long this takes does not say which failed.
    """
    login = await _password_login(hass, user)
    password_ok = False
    if login is not None:
        try:
            await login.provider.async_validate_login(login.username, password)
        except InvalidAuth:
            password_ok = False
        else:
            password_ok = True
    code_ok = False
    module = hass.auth.get_auth_mfa_module(TOTP_MODULE)
    if module is not None and code is not None:
        code_ok = await module.async_validate(user.id, {"code": code})
    return password_ok, code_ok
