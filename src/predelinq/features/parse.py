"""Reading declarations into a :class:`FeatureSet`: the built-in features (``builtin.toml``)
and a user's ``[[features]]``, each checked against the vocabulary of ``declarations.py``."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from predelinq.features.declarations import (
    AGGREGATIONS,
    CONDITION_OPS,
    DECLARATION_KEYS,
    FIELDS,
    LIST_OPS,
    ORDER_OPS,
    PERIOD_AGGS,
    PERIOD_DAYS,
    RESERVED_NAMES,
    SOURCES,
    TRANSFORMS,
    WINDOWED,
    Aggregate,
    Condition,
    Feature,
    FeatureDeclarationError,
    FeatureSet,
    Source,
)

BUILTIN_PATH = Path(__file__).with_name("builtin.toml")


def builtin_features() -> tuple[Feature, ...]:
    """The built-in features, from ``builtin.toml`` (grouped by family in ``[[family]]``)."""
    with BUILTIN_PATH.open("rb") as handle:
        document = tomllib.load(handle)
    features: list[Feature] = []
    for family in document["family"]:
        for entry in family["features"]:
            features.append(
                parse_feature(entry, where="built-in", known=features, family=family["name"])
            )
    return tuple(features)


def feature_set(
    user_features: Sequence[Mapping[str, Any]] = (),
    categories: Mapping[str, str] | None = None,
    *,
    origin: str = "predelinq.toml",
) -> FeatureSet:
    """The built-in features followed by the user's, checked; a bad entry raises
    ``FeatureDeclarationError`` naming it."""
    features = list(builtin_features())
    for index, entry in enumerate(user_features, start=1):
        label = f"{origin} [[features]] #{index}"
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            label += f" ({entry['name']!r})"
        features.append(parse_feature(entry, where=label, known=features, family="user"))
    return FeatureSet(tuple(features), dict(categories or {}))


def parse_feature(entry: Any, *, where: str, known: Sequence[Feature], family: str = "") -> Feature:
    if not isinstance(entry, Mapping):
        raise FeatureDeclarationError(f"{where}: a feature is a table of keys, not {entry!r}")
    unknown = set(entry) - DECLARATION_KEYS
    if unknown:
        raise FeatureDeclarationError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(DECLARATION_KEYS))}"
        )
    name = entry.get("name")
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
        raise FeatureDeclarationError(
            f"{where}: `name` must be a word of letters, digits and _ (got {name!r})"
        )
    if name in RESERVED_NAMES:
        raise FeatureDeclarationError(f"{where}: {name!r} is a column of every feature table")
    if any(f.name == name for f in known):
        raise FeatureDeclarationError(f"{where}: a feature named {name!r} already exists")
    aggregate = _parse_aggregate(entry, where=where)
    scale = entry.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
        raise FeatureDeclarationError(f"{where}: `scale` must be a finite number")
    combined = {
        key: _parse_reference(entry[key], key, where=where, source=aggregate.source, known=known)
        for key in ("minus", "ratio")
        if key in entry
    }
    transform = entry.get("transform")
    if transform is not None and transform not in TRANSFORMS:
        raise FeatureDeclarationError(
            f"{where}: unknown transform {transform!r}; known: {', '.join(TRANSFORMS)}"
        )
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise FeatureDeclarationError(f"{where}: `description` must be text")
    return Feature(
        name=name,
        aggregate=aggregate,
        scale=float(scale),
        minus=combined.get("minus"),
        ratio=combined.get("ratio"),
        transform=transform,
        description=description,
        origin=where if family == "user" else "built-in",
        family=family,
    )


def _parse_reference(
    value: Any, key: str, *, where: str, source: Source, known: Sequence[Feature]
) -> Aggregate | str:
    if isinstance(value, str):
        if not any(f.name == value for f in known):
            raise FeatureDeclarationError(
                f"{where}: `{key}` names {value!r}, which is not a feature declared before it"
            )
        return value
    if isinstance(value, Mapping):
        allowed = {"source", "where", "value", "agg", "window", "offset"}
        extra = set(value) - allowed
        if extra:
            raise FeatureDeclarationError(
                f"{where}: inline `{key}` takes only {', '.join(sorted(allowed))} "
                f"(not {', '.join(sorted(extra))})"
            )
        return _parse_aggregate({"source": source, **value}, where=f"{where} `{key}`")
    raise FeatureDeclarationError(
        f"{where}: `{key}` must be a feature's name or an inline table of source/where/value/"
        "agg/window/offset"
    )


def _parse_aggregate(entry: Mapping[str, Any], *, where: str) -> Aggregate:
    source = entry.get("source")
    if source not in SOURCES:
        raise FeatureDeclarationError(
            f"{where}: `source` must be one of {', '.join(SOURCES)} (got {source!r})"
        )
    agg = entry.get("agg")
    if agg not in AGGREGATIONS:
        raise FeatureDeclarationError(
            f"{where}: unknown `agg` {agg!r}; known: {', '.join(AGGREGATIONS)}"
        )
    _, needs_value, sources = AGGREGATIONS[agg]
    if source not in sources:
        raise FeatureDeclarationError(
            f"{where}: `agg = {agg!r}` is not available for {source} (only {', '.join(sources)})"
        )
    fields = FIELDS[source]
    value = entry.get("value")
    if needs_value:
        if value not in fields or fields[value][0] == "text":
            numeric = [n for n, (kind, _) in fields.items() if kind != "text"]
            raise FeatureDeclarationError(
                f"{where}: `agg = {agg!r}` needs a numeric `value` of {source}: "
                f"one of {', '.join(numeric)} (got {value!r})"
            )
    elif value is not None:
        raise FeatureDeclarationError(f"{where}: `agg = {agg!r}` takes no `value`")
    window, offset = _parse_window(entry, agg, source, where=where)
    if source == "customers" and "where" in entry:
        raise FeatureDeclarationError(f"{where}: customers features take no `where`")
    return Aggregate(
        source=source,
        agg=agg,
        value=value,
        where=_parse_where(entry.get("where"), source, where=where),
        window=window,
        offset=offset,
    )


def _parse_window(
    entry: Mapping[str, Any], agg: str, source: Source, *, where: str
) -> tuple[int | None, int]:
    window = entry.get("window", "all")
    offset = entry.get("offset", 0)
    if agg not in WINDOWED or source == "customers":
        if "window" in entry or "offset" in entry:
            raise FeatureDeclarationError(f"{where}: `agg = {agg!r}` takes no window")
        return None, 0
    if window == "all":
        days = None
    elif isinstance(window, int) and not isinstance(window, bool) and window >= 1:
        days = window
    else:
        raise FeatureDeclarationError(
            f'{where}: `window` must be a whole number of days >= 1 or "all" (got {window!r})'
        )
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise FeatureDeclarationError(f"{where}: `offset` must be whole days >= 0")
    if offset and days is None:
        raise FeatureDeclarationError(f"{where}: an `offset` needs a `window` in days")
    if agg in PERIOD_AGGS and (days is None or days % PERIOD_DAYS):
        raise FeatureDeclarationError(
            f"{where}: `agg = {agg!r}` needs a `window` that is a multiple of {PERIOD_DAYS} days"
        )
    return days, offset


def _parse_where(spec: Any, source: Source, *, where: str) -> tuple[tuple[Condition, ...], ...]:
    """``where``: a table of field conditions (all must hold), or an array of such tables
    (any may hold)."""
    if spec is None:
        return ()
    alternatives = spec if isinstance(spec, list) else [spec]
    if not alternatives or not all(isinstance(a, Mapping) and a for a in alternatives):
        raise FeatureDeclarationError(
            f"{where}: `where` must be a table of conditions or an array of tables"
        )
    return tuple(
        tuple(_parse_condition(name, test, source, where=where) for name, test in a.items())
        for a in alternatives
    )


def _parse_condition(name: str, test: Any, source: Source, *, where: str) -> Condition:
    fields = FIELDS[source]
    if name not in fields:
        raise FeatureDeclarationError(
            f"{where}: `where` names unknown field {name!r} of {source}; known: {', '.join(fields)}"
        )
    kind = fields[name][0]
    if isinstance(test, Mapping):
        if len(test) != 1 or next(iter(test)) not in CONDITION_OPS:
            raise FeatureDeclarationError(
                f"{where}: condition on {name!r} must be one of "
                f"{{{', '.join(f'{op} = ...' for op in CONDITION_OPS)}}}"
            )
        op, value = next(iter(test.items()))
    elif isinstance(test, list):
        op, value = "in", test
    else:
        op, value = "eq", test
    values = value if op in LIST_OPS else [value]
    if op in LIST_OPS and not isinstance(value, list):
        raise FeatureDeclarationError(f"{where}: `{op}` on {name!r} takes an array")
    expected: tuple[type, ...] = {"number": (int, float), "text": (str,), "flag": (bool,)}[kind]
    for item in values:
        wrong = not isinstance(item, expected) or (kind == "number" and isinstance(item, bool))
        if wrong:
            raise FeatureDeclarationError(
                f"{where}: {name!r} is a {kind} field; {item!r} cannot be compared with it"
            )
    if op in ORDER_OPS and kind != "number":
        raise FeatureDeclarationError(f"{where}: `{op}` needs a number field, not {name!r}")
    stored = tuple(values) if op in LIST_OPS else value
    return Condition(name, op, stored)


def configured_features(settings: Any) -> FeatureSet:
    """The feature set of a ``Settings``: built-in features, then its ``[[features]]``, read
    with its ``[categories]`` mapping."""
    from predelinq.config import config_file_path

    return feature_set(settings.features, settings.categories, origin=str(config_file_path()))
