"""Reading experiment files: TOML (ours), and Chaos Toolkit's JSON and YAML, into one model.

The steps are the same for every format: parse the text; resolve ``configuration`` and
``secrets`` (values from environment variables too); substitute ``${name}`` everywhere else;
replace ``{"ref": name}`` activities by the activity of that name; then read every table with
`Fields`, which names each bad field. Our TOML format is read strictly (an unknown key is a
typo); Chaos Toolkit files leniently, since they carry keys for extensions we do not run.
"""

from __future__ import annotations

import json
import os
import re
import string
import tomllib
from collections import ChainMap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from selfheal.chaos.experiment._fields import ExperimentError, ExperimentIssue, Fields
from selfheal.chaos.experiment._model import (
    AbortConditions,
    Activity,
    ActivityKind,
    During,
    Experiment,
    Pauses,
    Recovery,
    SteadyState,
)
from selfheal.chaos.experiment._providers import ProviderRegistry, default_registry
from selfheal.chaos.experiment._tolerances import parse_tolerance

__all__ = ["FORMATS", "load_experiment", "parse_experiment"]

#: File suffix -> format.
FORMATS = {".toml": "toml", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}

_HYPOTHESIS_KEYS = ("steady_state", "steady-state-hypothesis")
# Chaos Toolkit keys we accept and do not use.
_CTK_IGNORED = ("version", "contributions", "extensions", "runtime", "dry", "extra")
_WHOLE_REF = re.compile(r"\$\{([_a-zA-Z][_a-zA-Z0-9]*)\}")
_ENV_TYPES: dict[str, Callable[[str], Any]] = {
    "str": str,
    "bytes": str,
    "int": int,
    "float": float,
    "json": json.loads,
}
_CONTROLS = (
    "Chaos Toolkit controls are not supported (they would run unseen, and a safeguard control "
    "would silently not guard); use an [abort] table instead"
)


def load_experiment(
    path: str | Path,
    *,
    registry: ProviderRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    variables: Mapping[str, Any] | None = None,
) -> Experiment:
    """Read and validate an experiment file; its suffix picks the format.

    Args:
        path: A ``.toml``, ``.json``, ``.yaml`` or ``.yml`` file.
        registry: Provider types (default: `default_registry()`).
        environ: Where ``{type = "env"}`` values come from (default: `os.environ`).
        variables: Configuration values that override the file's (``--var key=value``).

    Returns:
        The experiment.

    Raises:
        ExperimentError: Naming every bad field, or why the file cannot be read.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ExperimentError(
            str(path), [ExperimentIssue("", "expected a .toml, .json, .yaml or .yml file")]
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ExperimentError(
            str(path), [ExperimentIssue("", f"cannot read: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError:
        raise ExperimentError(str(path), [ExperimentIssue("", "not UTF-8 text")]) from None
    return parse_experiment(
        text,
        format=fmt,
        source=str(path),
        registry=registry,
        environ=environ,
        variables=variables,
    )


def parse_experiment(
    text: str,
    *,
    format: str = "toml",
    source: str = "<string>",
    registry: ProviderRegistry | None = None,
    environ: Mapping[str, str] | None = None,
    variables: Mapping[str, Any] | None = None,
) -> Experiment:
    """Validate experiment `text` written in `format` (``toml``, ``json`` or ``yaml``).

    Args:
        text: The file's content.
        format: Its format.
        source: The file name, for messages and the experiment's default name.
        registry: Provider types (default: `default_registry()`).
        environ: Where ``{type = "env"}`` values come from (default: `os.environ`).
        variables: Configuration values that override the file's.

    Returns:
        The experiment.

    Raises:
        ExperimentError: Naming every bad field.
    """
    data = _parse_text(text, format, source)
    issues: list[ExperimentIssue] = []
    top = Fields(data, "", issues, strict=format == "toml")
    env = os.environ if environ is None else environ
    configuration = _configuration(top, env, variables or {})
    secrets = _secrets(top, env)
    mapping = ChainMap(dict(configuration), *(dict(s) for s in secrets.values()))
    body = {
        key: value if key in ("configuration", "secrets") else _substitute(value, mapping)
        for key, value in data.items()
    }
    top = Fields(body, "", issues, strict=format == "toml")
    top.ignore(("configuration", "secrets"))
    hypothesis_key = _hypothesis_key(top)
    _resolve_refs(body, top, hypothesis_key)
    experiment = _experiment(top, registry or default_registry(), source, format, hypothesis_key)
    if issues:
        raise ExperimentError(source, issues)
    assert experiment is not None
    return Experiment(
        **{**_fields_of(experiment), "configuration": configuration, "secrets": secrets}
    )


def _fields_of(experiment: Experiment) -> dict[str, Any]:
    return {name: getattr(experiment, name) for name in experiment.__dataclass_fields__}


def _parse_text(text: str, fmt: str, source: str) -> dict[str, Any]:
    data: Any
    try:
        if fmt == "toml":
            data = tomllib.loads(text)
        elif fmt == "json":
            data = json.loads(text)
        elif fmt == "yaml":
            data = _load_yaml(text, source)
        else:
            raise ExperimentError(
                source, [ExperimentIssue("", f"unknown format {fmt!r}: toml, json or yaml")]
            )
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(source, [ExperimentIssue("", f"not valid TOML: {exc}")]) from None
    except json.JSONDecodeError as exc:
        message = f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise ExperimentError(source, [ExperimentIssue("", message)]) from None
    if not isinstance(data, dict):
        raise ExperimentError(
            source, [ExperimentIssue("", "expected a table (an object) at the top level")]
        )
    return data


def _load_yaml(text: str, source: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ExperimentError(
            source, [ExperimentIssue("", "YAML files need PyYAML: pip install 'selfheal[server]'")]
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid"
        message = f"not valid YAML: {problem}{where}"
        raise ExperimentError(source, [ExperimentIssue("", message)]) from None


def _env_value(fields: Fields, key: str, spec: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    """Resolve ``{type = "env", key = NAME, default?, env_var_type?}``; None after an issue."""
    name = spec.get("key")
    if not isinstance(name, str) or not name:
        fields.problem(key, 'an env value needs key = "VARIABLE_NAME"')
        return None
    if name not in env:
        if "default" in spec:
            return spec["default"]
        fields.problem(key, f"environment variable {name} is not set and there is no default")
        return None
    kind = spec.get("env_var_type", "str")
    convert = _ENV_TYPES.get(kind)
    if convert is None:
        fields.problem(key, f"env_var_type: expected one of {', '.join(_ENV_TYPES)}, got {kind!r}")
        return None
    try:
        return convert(env[name])
    except ValueError:
        # The value is not shown: it may be a secret.
        fields.problem(key, f"environment variable {name} is not a valid {kind}")
        return None


def _configuration(
    top: Fields, env: Mapping[str, str], variables: Mapping[str, Any]
) -> dict[str, Any]:
    table = top.table("configuration")
    out: dict[str, Any] = {}
    for key, value in (table.data if table else {}).items():
        if key in variables:
            continue
        if isinstance(value, Mapping) and value.get("type") == "env":
            assert table is not None
            out[key] = _env_value(table, key, value, env)
        elif isinstance(value, Mapping) and value.get("type") == "probe":
            assert table is not None
            table.problem(key, "dynamic configuration (a probe) is not supported")
        else:
            out[key] = value
    out.update(variables)
    return out


def _secrets(top: Fields, env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    table = top.table("secrets")
    out: dict[str, dict[str, Any]] = {}
    if table is None:
        return out
    for scope, values in table.data.items():
        inner = table.table(scope)
        if inner is None:
            continue
        resolved: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, Mapping) and value.get("type") == "env":
                resolved[key] = _env_value(inner, key, value, env)
            elif isinstance(value, Mapping) and "type" in value:
                inner.problem(key, f"secrets of type {value['type']!r} are not supported (env is)")
            else:
                resolved[key] = value
        out[scope] = resolved
    return out


def _substitute(value: Any, mapping: Mapping[str, Any]) -> Any:
    """Replace ``${name}`` by configuration or secret values, recursively.

    A string that is one whole ``${name}`` takes the value with its type (a number stays a
    number); elsewhere values are formatted into the string.
    """
    if isinstance(value, str):
        whole = _WHOLE_REF.fullmatch(value)
        if whole and whole.group(1) in mapping:
            return mapping[whole.group(1)]
        return string.Template(value).safe_substitute(mapping) if "$" in value else value
    if isinstance(value, Mapping):
        return {k: _substitute(v, mapping) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_substitute(v, mapping) for v in value]
    return value


def _hypothesis_key(top: Fields) -> str | None:
    present = [key for key in _HYPOTHESIS_KEYS if key in top.data]
    top.ignore(_HYPOTHESIS_KEYS)
    if len(present) > 1:
        top.problem(present[1], f"give either {present[0]} or {present[1]}, not both")
    return present[0] if present else None


def _resolve_refs(body: dict[str, Any], top: Fields, hypothesis_key: str | None) -> None:
    """Replace ``{"ref": name}`` activities by the first activity declared with that name."""
    hypothesis = body.get(hypothesis_key or "")
    lists = [("method", body.get("method")), ("rollbacks", body.get("rollbacks"))]
    named: dict[str, Any] = {}
    probes = hypothesis.get("probes") if isinstance(hypothesis, Mapping) else None
    for activities in (probes, body.get("method"), body.get("rollbacks")):
        for item in activities if isinstance(activities, list) else ():
            if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                named.setdefault(item["name"], item)
    for key, activities in lists:
        if not isinstance(activities, list):
            continue
        for i, item in enumerate(activities):
            if isinstance(item, Mapping) and "ref" in item:
                target = named.get(item["ref"]) if isinstance(item["ref"], str) else None
                if target is None:
                    top.problem(f"{key}[{i}]", f"ref: no activity named {item['ref']!r}")
                else:
                    activities[i] = target


_METHOD_REQUIRED = "required: a list of activities (an empty list checks only the steady state)"


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")
    return slug or "experiment"


def _experiment(
    top: Fields, registry: ProviderRegistry, source: str, fmt: str, hypothesis_key: str | None
) -> Experiment | None:
    title = top.string("title", required=True)
    description = top.string("description", default="")
    tags = top.strings("tags")
    raw_name = top.string("name")
    name = _slug(raw_name or Path(source).stem)
    if raw_name is not None and name != raw_name:
        top.problem("name", "expected lowercase letters, digits, '-' and '_' only")
    if top.has("controls"):
        top.problem("controls", _CONTROLS)
    top.ignore(_CTK_IGNORED)
    steady = None
    if hypothesis_key:
        # Chaos Toolkit requires the hypothesis' title; our own [steady_state] has a default.
        ctk = hypothesis_key == "steady-state-hypothesis"
        steady = _steady_state(top.table(hypothesis_key), registry, title_required=ctk)
    method = _activities(top, "method", ActivityKind.ACTION, registry)
    # An empty list is a steady-state-only experiment, which Chaos Toolkit runs too; a missing
    # method is more likely a typo or a misplaced table than a choice.
    if top.data.get("method") is None:
        top.problem("method", _METHOD_REQUIRED)
    rollbacks = _activities(top, "rollbacks", ActivityKind.ACTION, registry)
    recovery = _recovery(top.table("recovery"))
    during = _during(top.table("during"))
    abort = _abort(top.table("abort"), registry)
    has_probes = steady is not None and bool(steady.probes)
    if during is not None and not has_probes:
        top.problem("during", "needs a steady state with probes to check")
    if recovery.within > 0 and not has_probes:
        top.problem("recovery", "needs a steady state with probes to wait for")
    top.finish()
    if title is None:
        return None
    return Experiment(
        name=name,
        title=title,
        description=description or "",
        tags=tags,
        steady_state=steady,
        method=method,
        rollbacks=rollbacks,
        recovery=recovery,
        during=during,
        abort=abort,
        source=source,
        format=fmt,
    )


def _steady_state(
    table: Fields | None, registry: ProviderRegistry, *, title_required: bool
) -> SteadyState | None:
    if table is None:
        return None
    if title_required:
        title = table.string("title", required=True)
    else:
        title = table.string("title", default="steady state")
    probes = tuple(
        a
        for f in table.tables("probes")
        if (a := _activity(f, ActivityKind.PROBE, registry, tolerance=True)) is not None
    )
    if table.has("controls"):
        table.problem("controls", _CONTROLS)
    table.finish()
    return SteadyState(title or "steady state", probes)


def _activities(
    top: Fields, key: str, kind: ActivityKind, registry: ProviderRegistry
) -> tuple[Activity, ...]:
    return tuple(
        a
        for f in top.tables(key)
        if (a := _activity(f, kind, registry, tolerance=False)) is not None
    )


def _activity(
    fields: Fields, default_kind: ActivityKind, registry: ProviderRegistry, *, tolerance: bool
) -> Activity | None:
    name = fields.string("name", required=True)
    kind = fields.choice("type", tuple(ActivityKind), default=default_kind)
    if fields.has("controls"):
        fields.problem("controls", _CONTROLS)
    provider_fields = fields.table("provider", required=True)
    provider = registry.parse(provider_fields) if provider_fields is not None else None
    checks = parse_tolerance(fields, "tolerance", registry) if tolerance else None
    if not tolerance:
        fields.ignore(("tolerance",))
    pauses = _pauses(fields.table("pauses"))
    background = fields.boolean("background")
    fields.ignore(("dry", "timeout", "configuration", "secrets"))
    fields.finish()
    if name is None or kind is None or provider is None or (tolerance and checks is None):
        return None
    return Activity(name, ActivityKind(kind), provider, checks, pauses, background)


def _pauses(table: Fields | None) -> Pauses:
    if table is None:
        return Pauses()
    before = table.number("before", default=0.0)
    after = table.number("after", default=0.0)
    table.finish()
    return Pauses(before or 0.0, after or 0.0)


def _recovery(table: Fields | None) -> Recovery:
    if table is None:
        return Recovery()
    within = table.number("within", default=0.0)
    interval = table.number("interval", default=1.0, positive=True)
    table.finish()
    return Recovery(within or 0.0, interval or 1.0)


def _during(table: Fields | None) -> During | None:
    if table is None:
        return None
    interval = table.number("interval", default=1.0, positive=True)
    fail_fast = table.boolean("fail_fast")
    table.finish()
    return During(interval or 1.0, fail_fast)


def _abort(table: Fields | None, registry: ProviderRegistry) -> AbortConditions | None:
    if table is None:
        return None
    probes = tuple(
        a
        for f in table.tables("probes")
        if (a := _activity(f, ActivityKind.PROBE, registry, tolerance=True)) is not None
    )
    interval = table.number("interval", default=1.0, positive=True)
    max_duration = table.number("max_duration", positive=True)
    table.finish()
    if not table.data.get("probes") and max_duration is None:
        table.problem(None, "needs probes, max_duration, or both")
    return AbortConditions(probes, interval or 1.0, max_duration)
