"""Hypothesis strategies of hostile ``selfheal.toml`` files, for the fuzz test and campaign.

Tables are generated from the config models themselves (every key of every section, found
by walking their fields as the configuration reference does), each value either plausible
for its type or hostile: huge and tiny numbers, ``inf`` and ``nan``, integers past 64 bits,
NUL, bidi and control characters, 100k-character strings, wrong types, unknown keys, nesting
hundreds of levels deep and ``depends_on`` chains of a thousand programs. The text may then be
cut, padded past the size limit or have garbage inserted.
"""

from __future__ import annotations

import math
import re
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from hypothesis import strategies as st
from pydantic import BaseModel

from selfheal.config import SelfhealConfig

__all__ = ["config_texts", "to_toml"]

HOSTILE_NUMBERS: list[Any] = [
    math.inf,
    -math.inf,
    math.nan,
    1e308,
    -1e308,
    1e-300,
    5e-324,
    0,
    0.0,
    -1,
    -0.5,
    10**12,
    10**30,
    -(10**30),
    2**63,
    2**63 - 1,
    -(2**63),
    1e200,
]
HOSTILE_STRINGS: list[str] = [
    "",
    "\0",
    "a\0b",
    "\u202e\u200b",
    "\u202eevil",
    "\n",
    "line\nbreak",
    " padded ",
    "\x1b[2J",
    "x" * 100_000,
    "${",
    "${UNSET_SELFHEAL_VAR}",
    "%(here)s",
    "%(",
    "%(process_num)d",
    "{subject}",
    "../../../../etc/passwd",
    "/dev/zero",
    "/proc/self/mem",
    "localhost",
    "0.0.0.0",
    "::1",
    "[::1]",
    "127.0.0.1:99999",
    "http://",
    "redis://",
    "sqlite:///",
    "[/bold]",
    "password hunter2",
    "é" * 20,
]
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_NAMES = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True),
    st.sampled_from(["web", "db", "worker", "api_1", "all", "", "a:b", "x.y", "\u202e", " "]),
    _TEXT,
)


def _scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.booleans(),
        st.integers(),
        st.floats(),
        st.sampled_from(HOSTILE_NUMBERS),
        _TEXT,
        st.sampled_from(HOSTILE_STRINGS),
    )


def _nested(depth: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind == "array" else {"a": value}
    return value


def _hostile() -> st.SearchStrategy[Any]:
    """A value no key should accept, or one at the edge of what it should."""
    return st.one_of(
        st.sampled_from(HOSTILE_NUMBERS),
        st.sampled_from(HOSTILE_STRINGS),
        st.builds(_nested, st.integers(30, 600), st.sampled_from(["array", "table"])),
        st.lists(_scalars(), max_size=4),
        st.dictionaries(_NAMES, _scalars(), max_size=3),
    )


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _for(annotation: Any, depth: int) -> st.SearchStrategy[Any]:
    """Plausible values of a field's type, or (often) a hostile one."""
    return st.one_of(_typed(annotation, depth), _hostile())


def _typed(annotation: Any, depth: int) -> st.SearchStrategy[Any]:
    annotation = _strip(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _table(annotation, depth + 1) if depth < 4 else st.just({})
    if origin in (Union, types.UnionType):
        return st.one_of([_typed(a, depth) for a in args if a is not type(None)])
    if origin is Literal:
        return st.sampled_from(args)
    if origin in (list, tuple, set, frozenset):
        return st.lists(_for(args[0], depth) if args else _scalars(), max_size=3)
    if origin is dict:
        value = _for(args[1], depth) if len(args) == 2 else _scalars()
        return st.dictionaries(_NAMES, value, max_size=3)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        bool: st.booleans(),
        int: st.integers(-5, 100) | st.integers(),
        float: st.floats(0, 100) | st.floats(),
        str: st.from_regex(r"[a-z0-9./:-]{1,20}", fullmatch=True) | _TEXT,
    }
    return simple.get(annotation, _scalars())


def _table(model: type[BaseModel], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """A table of `model`: some of its keys (by their TOML names), maybe an unknown one."""
    fields = {(info.alias or name): info.annotation for name, info in model.model_fields.items()}
    keys = st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=6)
    unknown = st.dictionaries(_NAMES, _scalars(), max_size=1)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        out = {key: draw(_for(fields[key], depth)) for key in draw(keys)}
        if draw(st.integers(0, 9)) == 0:
            out.update(draw(unknown))
        return out

    return build()


def _chain(n: int, cycle: bool) -> dict[str, Any]:
    programs: dict[str, Any] = {}
    for i in range(n):
        deps = [f"p{i + 1}"] if i < n - 1 else (["p0"] if cycle else [])
        programs[f"p{i}"] = {"command": ["true"], "autostart": False, "depends_on": deps}
    return {"programs": programs}


def _programs() -> st.SearchStrategy[dict[str, Any]]:
    program = st.fixed_dictionaries(
        {"command": st.just(["true"]), "autostart": st.just(False)}
    ).flatmap(lambda base: _table(_program_model()).map(lambda t: {**base, **t}))
    return st.dictionaries(_NAMES, program, max_size=3)


def _program_model() -> type[BaseModel]:
    annotation = _strip(SelfhealConfig.model_fields["programs"].annotation)
    model: type[BaseModel] = get_args(annotation)[1]
    return model


@st.composite
def config_data(draw: st.DrawFn) -> dict[str, Any]:
    """A config as data: sections of the real models with hostile values, or a long chain."""
    kind = draw(st.integers(0, 39))
    if kind == 0:
        return _chain(draw(st.integers(100, 1100)), draw(st.booleans()))
    if kind == 1:  # thousands of mistakes, each to be located in the file
        bad = draw(st.sampled_from([{"restart": "x"}, {"numprocs": 0}, {"command": "x y"}]))
        return {"programs": {f"p{i}": bad for i in range(draw(st.integers(1000, 20_000)))}}
    data = draw(_table(SelfhealConfig))
    data.pop("include", None)  # files elsewhere: not what is fuzzed here
    if draw(st.booleans()):
        data["programs"] = draw(_programs())
    return data


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_toml(data: dict[str, Any]) -> str:
    """Return `data` as TOML: one ``key = value`` line per top-level key, inline tables below.

    Iterative, so nesting hundreds of levels deep serialises without recursion.
    """
    return "".join(f"{_key(k)} = {_value(v)}\n" for k, v in data.items())


def _value(value: Any) -> str:
    parts: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            parts.append(item.text)
        elif isinstance(item, dict):
            stack.append(_Raw(" }" if item else "}"))
            entries = list(item.items())
            for i, (k, v) in reversed(list(enumerate(entries))):
                stack.append(v)
                stack.append(_Raw(("" if i == 0 else ", ") + f"{_key(str(k))} = "))
            stack.append(_Raw("{ " if item else "{"))
        elif isinstance(item, list | tuple):
            stack.append(_Raw("]"))
            for i, v in reversed(list(enumerate(item))):
                stack.append(v)
                if i:
                    stack.append(_Raw(", "))
            stack.append(_Raw("["))
        else:
            parts.append(_scalar(item))
    return "".join(parts)


class _Raw:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return _string(str(value))


@st.composite
def config_texts(draw: st.DrawFn) -> str:
    """A ``selfheal.toml`` text: generated data as TOML, sometimes damaged on purpose."""
    text = to_toml(draw(config_data()))
    damage = draw(st.integers(0, 9))
    if damage == 0 and text:
        text = text[: draw(st.integers(0, len(text) - 1))]  # cut anywhere
    elif damage == 1:
        text += draw(st.sampled_from(["[programs", "x = ", "= 1", "[[recovery]]\n", "\0", "a.b.c"]))
    elif damage == 2:
        text += "# padding past the size limit\n" * 40_000
    elif damage == 3:
        text += draw(st.sampled_from(["[control]\n", "[journal]\n", "[health]\n"])) * 2
    return text
