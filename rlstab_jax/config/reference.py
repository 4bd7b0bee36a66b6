"""The config reference, generated from the schemas so that it cannot drift from them.

For every key of every section and of every registered agent family: its type (from the type
hints), default (from the dataclass), whether it is a vmappable hyper-parameter (``hparam()``),
its valid range and its help text. The range is what the section's own ``validate()`` rejects:
each key is set to a handful of probe values (negative, zero, NaN, empty, an unknown choice, ...)
and the one-line ``ConfigError`` messages naming that key are collected, so the documented rule is
the enforced rule. The help text comes from the class docstring's ``name: text`` entries
(``name1, name2: text`` documents several keys at once).

``python -m rlstab_jax.config.reference`` prints the Markdown (the docs build includes it).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.split import HPARAM

_ENTRY = re.compile(r"^(\s*)((?:[a-z_][a-z0-9_]*)(?:,\s*[a-z_][a-z0-9_]*)*):\s+(\S.*)$")
# a second entry later on the same line: "... MLP widths. activation: hidden activation."
_INLINE = re.compile(r"(?<=[.)])\s+(?=(?:[a-z_][a-z0-9_]*)(?:,\s*[a-z_][a-z0-9_]*)*:\s)")


@dataclasses.dataclass(frozen=True)
class KeyDoc:
    key: str  # "train.total_steps"
    type: str
    default: str
    hparam: bool
    range: str
    help: str


def field_help(cls: type) -> dict[str, str]:
    """``{field: text}`` from ``name: text`` entries of ``cls``'s docstrings (and its bases')."""
    fields = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = klass.__dict__.get("__doc__") or ""
        current: list[str] = []
        indent = -1
        for line in doc.splitlines():
            parts = _INLINE.split(line)
            for j, part in enumerate(parts):
                m = _ENTRY.match(part if j == 0 else "  " + part)
                names = [n.strip() for n in m.group(2).split(",")] if m else []
                if m and names and all(n in fields for n in names):
                    current = names
                    indent = len(m.group(1)) if j == 0 else indent
                    for n in names:
                        out[n] = m.group(3).strip()
                elif current and j == 0 and part.strip() and (
                        len(part) - len(part.lstrip()) > indent):
                    for n in current:
                        out[n] += " " + part.strip()
                else:
                    current = [] if j == 0 else current
    return out


def type_name(tp: Any) -> str:
    """Readable type of a schema field (``list[int]``, ``'tanh' | 'clamp'``, ``str | None``)."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " \\| ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        return f"list[{type_name(args[0]) if args else 'any'}]"
    if origin is dict or tp is dict:
        return "mapping"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _show(v: Any) -> str:
    if v is dataclasses.MISSING:
        return "(required)"
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, tuple):
        v = list(v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    return f"`{v!r}`" if isinstance(v, str) else f"`{v}`"


def _probes(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return [p for a in typing.get_args(tp) if a is not type(None) for p in _probes(a)]
    if tp is bool or origin is typing.Literal:
        return []  # the type column lists every allowed value
    if tp is int:
        return [-(10**9), -1, 0, 1, 2, 10**9]
    if tp is float:
        return [-1e9, -1.0, 0.0, 0.5, 1.0, 2.0, 1e9, math.nan, math.inf]
    if origin is tuple:
        return [(), (0,), (-1, -1), (1,), (1, 2, 3, 4)]
    if tp is str:
        return ["", "__not_a_valid_value__"]
    return []


def _why(message: str, key: str) -> str | None:
    if not message.startswith(f"{key}="):
        return None
    i = message.find(" must ")
    return message[i + 1:] if i >= 0 else message


def field_range(cls: type, prefix: str, name: str, tp: Any) -> str:
    """The rules ``cls.validate()`` enforces on ``name``, found by probing it (see module doc)."""
    base = cls()
    if not hasattr(base, "validate"):
        return ""
    whys: list[str] = []
    for value in _probes(tp):
        try:
            dataclasses.replace(base, **{name: value}).validate()
        except (ConfigError, TypeError, ValueError) as e:
            why = _why(str(e), f"{prefix}.{name}")
            if why and why not in whys:
                whys.append(why)
    return "; ".join(whys)


def section_keys(cls: type, prefix: str) -> list[KeyDoc]:
    """One :class:`KeyDoc` per field of the schema dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    help_text = field_help(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        out.append(KeyDoc(
            key=f"{prefix}.{f.name}", type=type_name(tp), default=_show(_default(f)),
            hparam=bool(f.metadata.get(HPARAM)), range=field_range(cls, prefix, f.name, tp),
            help=help_text.get(f.name, "")))
    return out


def all_sections() -> dict[str, list[KeyDoc]]:
    """``{"agent (sac)": [...], ..., "env": [...], ...}`` for every agent family and section."""
    from rlstab_jax.agents import registry
    from rlstab_jax.config.schema import SECTIONS

    out: dict[str, list[KeyDoc]] = {}
    for name in registry.names():
        entry = registry.get(name)
        out[f"agent ({name})"] = [KeyDoc("agent.name", "str", f"`{name!r}`", False,
                                         f"one of {', '.join(map(repr, registry.names()))}",
                                         "agent family")] + section_keys(entry.config_cls,
                                                                         "agent")
    for section, cls in SECTIONS.items():
        out[section] = section_keys(cls, section)
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") if text else "–"


def markdown() -> str:
    """The whole reference as Markdown (one table per section and agent family)."""
    from rlstab_jax.agents import registry
    from rlstab_jax.config.schema import SECTIONS

    lines = ["# Config reference", "",
             "Generated from the schemas (`rlstab_jax/config/schema.py` and each agent's config "
             "class) by `rlstab_jax.config.reference` at docs build time: types and defaults "
             "come from the dataclasses, *range* is what the section's `validate()` rejects "
             "(probed), *help* is the class docstring's entry. *hparam* keys are float32 leaves "
             "of the vmappable hyper-parameter pytree (`jax.vmap(train)(hparams, keys)`); all "
             "others are static (they change the compiled graph). Set any key as `key=value` on "
             "the command line or in a preset; `python -m rlstab_jax.train --print-config` "
             "prints the resolved values.", ""]
    sections = all_sections()
    for title, keys in sections.items():
        lines.append(f"## {title}")
        lines.append("")
        if title.startswith("agent ("):
            name = title[len("agent ("):-1]
            cls = registry.get(name).config_cls
            lines += [_first_paragraph(cls), ""]
        elif title in SECTIONS:
            lines += [_first_paragraph(SECTIONS[title]), ""]
        lines += ["| key | type | default | hparam | range | help |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for k in keys:
            lines.append(f"| `{k.key}` | {k.type} | {k.default} | {'yes' if k.hparam else ''} "
                         f"| {_cell(k.range)} | {_cell(k.help)} |")
        lines.append("")
    return "\n".join(lines)


def _first_paragraph(cls: type) -> str:
    doc = (cls.__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


if __name__ == "__main__":
    print(markdown())
