"""The execution kill switch. Only the exact value ``execution-enabled`` turns execution on;
everything else fails closed to decision-only, and a non-empty wrong value is called out."""

from __future__ import annotations

import logging
import os
import unicodedata
from dataclasses import dataclass

from router.decision import ExecutionMode

ENV_VAR = "AMAIMA_EXECUTION_MODE"


def visible(value: str) -> str:
    """The value quoted, with every character that is not printable ASCII spelled out by code
    point and name: 'execution\u2010enabled' prints as 'execution<U+2010 HYPHEN>enabled', so
    a look-alike never reads as the valid value it imitates."""
    out = []
    for ch in value:
        if " " <= ch <= "~" and ch != "<":
            out.append(ch)
        else:
            name = unicodedata.name(ch, "") or unicodedata.category(ch)
            out.append(f"<U+{ord(ch):04X} {name}>")
    return "'" + "".join(out) + "'"


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ToggleState:
    mode: ExecutionMode
    """The effective mode: what the router actually does."""
    raw: str | None
    """The value as configured (None when unset). A toggle value is config, not query text."""
    invalid: bool
    """True when the configured value was not exactly one of the two valid values."""

    @property
    def active(self) -> bool:
        return self.mode is ExecutionMode.EXECUTION_ENABLED

    @property
    def reason(self) -> str:
        if self.invalid:
            return (
                f"{ENV_VAR}={visible(self.raw or '')} is not a valid value (exactly "
                "'decision-only' or "
                "'execution-enabled'); failing closed to decision-only: nothing will be executed"
            )
        if self.raw is None:
            return f"{ENV_VAR} is unset: decision-only (the safe default)"
        return f"{ENV_VAR}={self.raw}"


def resolve_toggle(value: str | None, *, warn: bool = True) -> ToggleState:
    """Interpret a toggle value. Case, spaces and look-alikes are misconfigurations, not synonyms."""
    if value is None:
        return ToggleState(ExecutionMode.DECISION_ONLY, None, False)
    if value == ExecutionMode.EXECUTION_ENABLED.value:
        return ToggleState(ExecutionMode.EXECUTION_ENABLED, value, False)
    if value == ExecutionMode.DECISION_ONLY.value:
        return ToggleState(ExecutionMode.DECISION_ONLY, value, False)
    state = ToggleState(ExecutionMode.DECISION_ONLY, value, True)
    if warn:
        log.warning(state.reason)
    return state


def toggle_from_env(environ: dict[str, str] | None = None, *, warn: bool = True) -> ToggleState:
    env = os.environ if environ is None else environ
    return resolve_toggle(env.get(ENV_VAR), warn=warn)
