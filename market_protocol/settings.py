"""Settings declared once as data; values from defaults, a TOML file, then the environment.

Each service declares a tuple of ``Setting``; ``load_settings`` resolves them in that order
(later wins) and refuses unknown keys in the file, so a typo fails loudly at start-up.
Environment variables are ``TRACEPAY_<SERVICE>_<NAME>`` in upper case.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Setting", "SettingsError", "load_settings", "parse_bool"]


class SettingsError(ValueError):
    pass


def parse_bool(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any] = str
    secret: bool = False


def load_settings(declared: Iterable[Setting], service: str, *,
                  config_file: str | os.PathLike[str] | None = None,
                  overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Resolve settings: default < config file < environment < explicit overrides."""
    declared = tuple(declared)
    names = {setting.name for setting in declared}
    raw: dict[str, Any] = {setting.name: setting.default for setting in declared}
    if config_file:
        with Path(config_file).open("rb") as handle:
            from_file = tomllib.load(handle)
        section = from_file.get(service, from_file)
        unknown = sorted(set(section) - names)
        if unknown:
            raise SettingsError(f"{config_file}: unknown {service} setting(s): {', '.join(unknown)}")
        raw.update(section)
    environ = os.environ if environ is None else environ
    prefix = f"TRACEPAY_{service.upper().replace('-', '_')}_"
    for setting in declared:
        value = environ.get(prefix + setting.name.upper())
        if value is not None:
            raw[setting.name] = value
    for key, value in (overrides or {}).items():
        if key not in names:
            raise SettingsError(f"unknown {service} setting: {key}")
        if value is not None:
            raw[key] = value
    resolved: dict[str, Any] = {}
    for setting in declared:
        value = raw[setting.name]
        try:
            resolved[setting.name] = value if value is None else setting.parse(value)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{service} setting {setting.name}: {exc}") from exc
    return resolved
