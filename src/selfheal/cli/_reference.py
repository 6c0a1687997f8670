"""The configuration reference, generated from the pydantic models so that it cannot drift.

``python -m selfheal.cli._reference > docs/configuration-reference.md`` writes it;
``tests/docs/test_reference.py`` fails when the committed file differs from what this renders.
Every model reachable from `selfheal.config.SelfhealConfig` gets one section: its docstring
and a table of its keys (type, default, constraints, description), found by walking the
fields' annotations, so a key added to any model appears here without anyone writing it down.
"""

from __future__ import annotations

import inspect
import json
import re
import types
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

__all__ = ["render_reference"]

_REGENERATE = "python -m selfheal.cli._reference > docs/configuration-reference.md"

_SCALARS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Any: "any",
}

# annotated_types constraint attribute -> how it reads in the table.
_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
_LENGTHS = (("min_length", "length >="), ("max_length", "length <="))

# What a model cannot say about its own key (a default computed elsewhere). A note for a key
# that no longer exists makes `render_reference` fail, so a note cannot outlive its key.
_NOTES = {
    "journal.url": "unset, the daemon uses `<control.state_dir>/journal.db`; a relative path is "
    "taken relative to the config file's directory",
}


@dataclass
class _Section:
    """One model and the key paths where it appears (the first names its section)."""

    path: str
    model: type[BaseModel]
    also: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return ", ".join(f"`{p}`" for p in (self.path, *self.also)) if self.path else "Top level"

    @property
    def anchor(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.path.lower()).strip("-")
        return slug or "top-level"


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _nested(annotation: Any, suffix: str = "") -> list[tuple[type[BaseModel], str]]:
    """Return the models inside `annotation`, each with the key-path suffix that reaches it."""
    annotation = _strip(annotation)
    if _is_model(annotation):
        return [(annotation, suffix)]
    origin, args = get_origin(annotation), get_args(annotation)
    if _is_union(annotation):
        return [found for arg in args for found in _nested(arg, suffix)]
    if origin in (list, tuple, set, frozenset) and args:
        return _nested(args[0], suffix + "[]")
    if origin is dict and len(args) == 2:
        return _nested(args[1], suffix + ".<name>")
    return []


def _sections(root: type[BaseModel]) -> list[_Section]:
    """Every model reachable from `root`, in the order a reader meets them (depth first)."""
    seen: dict[type[BaseModel], _Section] = {}
    order: list[_Section] = []

    def visit(model: type[BaseModel], path: str) -> None:
        if model in seen:
            seen[model].also.append(path)
            return
        section = _Section(path, model)
        seen[model] = section
        order.append(section)
        for name, info in model.model_fields.items():
            key = f"{path}.{name}" if path else name
            for sub, suffix in _nested(info.annotation):
                visit(sub, key + suffix)

    visit(root, "")
    return order


def _type(annotation: Any, sections: dict[type[BaseModel], _Section]) -> str:
    annotation = _strip(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if _is_model(annotation):
        section = sections[annotation]
        text = f"table ([`{section.path}`](#{section.anchor}))"
    elif _is_union(annotation):
        parts = [a for a in args if a is not type(None)]
        text = " or ".join(_type(a, sections) for a in parts)
    elif origin is Literal:
        text = "one of " + ", ".join(f"`{json.dumps(a)}`" for a in args)
    elif origin in (list, tuple, set, frozenset):
        text = f"array of {_plural(_type(args[0], sections))}" if args else "array"
    elif origin is dict:
        text = f"table of {_plural(_type(args[1], sections))}" if len(args) == 2 else "table"
    else:
        text = _SCALARS.get(annotation) or f"`{getattr(annotation, '__name__', annotation)}`"
    return text


def _plural(kind: str) -> str:
    head, sep, rest = kind.partition(" ")
    if head in ("table", "array", "string", "integer", "number", "boolean"):
        return f"{head}s{sep}{rest}"
    return kind


def _toml(value: Any) -> str:
    """Return `value` as it would be written in TOML."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value)
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_toml(v) for v in value) + "]"
    elif isinstance(value, dict):
        pairs = ", ".join(f"{k} = {_toml(v)}" for k, v in value.items())
        text = "{ " + pairs + " }" if pairs else "{}"
    else:
        text = repr(value)
    return text


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "not set"
    if isinstance(value, BaseModel):
        return "its defaults"
    return f"`{_toml(value)}`"


def _constraints(info: FieldInfo) -> str:
    found = []
    for item in info.metadata:
        for attr, text in (*_BOUNDS, *_LENGTHS):
            bound = getattr(item, attr, None)
            if bound is not None:
                found.append(f"{text} {bound}")
    return ", ".join(found)


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _doc(model: type[BaseModel]) -> str:
    # `__doc__` of the class itself: a model without a docstring must not show BaseModel's.
    raw = model.__dict__.get("__doc__")
    return inspect.cleandoc(raw) if raw else ""


def _render_section(
    section: _Section, sections: dict[type[BaseModel], _Section], noted: set[str]
) -> list[str]:
    lines = [f'<a id="{section.anchor}"></a>', "", f"## {section.title}", ""]
    doc = _doc(section.model)
    if doc:
        lines += [doc, ""]
    lines += [
        "| key | type | default | constraints | description |",
        "|---|---|---|---|---|",
    ]
    for field_name, info in section.model.model_fields.items():
        name = info.alias or field_name  # what the TOML file says (``json``, not json_fields)
        key = f"{section.path}.{name}" if section.path else name
        description = "; ".join(filter(None, (info.description, _NOTES.get(key))))
        noted.add(key)
        row = (
            f"`{name}`",
            _type(info.annotation, sections),
            _default(info),
            _constraints(info),
            description,
        )
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return [*lines, ""]


def render_reference() -> str:
    """Return docs/configuration-reference.md: every key of ``selfheal.toml``, from the models.

    Returns:
        The Markdown text, ending in one newline.
    """
    from selfheal.config import SelfhealConfig

    order = _sections(SelfhealConfig)
    by_model = {s.model: s for s in order}
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from the pydantic models by `selfheal.cli._reference`; do not edit.",
        f"     Regenerate: {_REGENERATE} -->",
        "",
        "Every key of `selfheal.toml`, generated from the models that validate it, so it is",
        "always the one `selfheal run` accepts. [configuration.md](configuration.md) explains",
        "the sections with examples. In key paths, `<name>` is a key of your choosing",
        "(`programs.<name>` is `[programs.web]`) and `[]` an element of an array (`recovery[]`",
        "is one `[[recovery]]` table). A key that is not set is absent from the file (TOML has",
        "no null). An unknown key is an error. Rules that span keys (exactly one of several",
        "keys, one value below another) are checked too, and their errors name the key.",
        "Every number is finite (`nan` and `inf` are errors) and in its row's range: periods",
        "repeated (probe and check intervals) are at least 0.01 s (the kubelet's minimum is",
        "1 s; shorter is allowed for tests and local probes, never a busy loop), delays and",
        "timeouts at most a day, windows and cooldowns at most a year. Hosts and paths are",
        "printable text. A file is at most 1 MiB and nests at most 32 levels.",
        "",
        "Sections:",
        "",
    ]
    lines += [f"- [{s.title}](#{s.anchor})" for s in order]
    lines.append("")
    noted: set[str] = set()
    for section in order:
        lines += _render_section(section, by_model, noted)
    stale = sorted(set(_NOTES) - noted)
    if stale:
        raise LookupError(f"notes for keys the models no longer have: {', '.join(stale)}")
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render_reference(), end="")
