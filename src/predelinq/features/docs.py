"""Declarations in words: ``predelinq features list`` and the tables of docs/features.md."""

from __future__ import annotations

from predelinq.features.declarations import (
    CONDITION_OPS,
    WINDOWED,
    Aggregate,
    Condition,
    Feature,
)


def describe(feature: Feature) -> dict[str, str]:
    """Name, family, origin, the definition in one line, and the description."""
    definition = aggregate_text(feature.aggregate)
    if feature.scale != 1.0:
        definition = f"{feature.scale:g} x {definition}"
    if feature.minus is not None:
        definition = f"{definition} minus {_operand(feature.minus)}"
    if feature.ratio is not None:
        definition = f"({definition}) / {_operand(feature.ratio)}"
    if feature.transform:
        definition = f"{feature.transform}({definition})"
    return {
        "name": feature.name,
        "family": feature.family,
        "origin": feature.origin,
        "source": feature.source,
        "definition": definition,
        "description": feature.description,
    }


def _operand(reference: Aggregate | str) -> str:
    return reference if isinstance(reference, str) else f"({aggregate_text(reference)})"


def aggregate_text(aggregate: Aggregate) -> str:
    what = aggregate.agg if aggregate.value is None else f"{aggregate.agg} of {aggregate.value}"
    text = f"{what}, {aggregate.source}"
    if aggregate.where:
        text += " where " + " or ".join(
            " and ".join(_condition(c) for c in alternative) for alternative in aggregate.where
        )
    if aggregate.window is not None:
        if aggregate.offset:
            start, end = aggregate.offset + 1, aggregate.offset + aggregate.window
            text += f", days {start}-{end} before t"
        else:
            text += f", last {aggregate.window} days"
    elif aggregate.agg in WINDOWED and aggregate.source != "customers":
        text += ", all history"
    return text


def _condition(condition: Condition) -> str:
    value = condition.value
    shown = "[" + ", ".join(map(str, value)) + "]" if isinstance(value, tuple) else str(value)
    return f"{condition.field} {CONDITION_OPS[condition.op]} {shown}"


START, END = "<!-- builtin-features:start -->", "<!-- builtin-features:end -->"


def builtin_tables() -> str:
    """The built-in features as one Markdown table per family."""
    import tomllib

    from predelinq.features.parse import BUILTIN_PATH, builtin_features

    with BUILTIN_PATH.open("rb") as handle:
        families = {f["name"]: f["description"] for f in tomllib.load(handle)["family"]}
    features = builtin_features()
    parts = []
    for family, about in families.items():
        parts += [f"### {family}", "", about, "", "| name | definition | meaning |"]
        parts.append("| --- | --- | --- |")
        for feature in features:
            if feature.family == family:
                row = describe(feature)
                parts.append(f"| `{row['name']}` | {row['definition']} | {row['description']} |")
        parts.append("")
    return "\n".join(parts)


def with_builtin_tables(markdown: str) -> str:
    """``markdown`` (docs/features.md) with its generated section replaced."""
    head, _, rest = markdown.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{builtin_tables()}{END}{tail}"


if __name__ == "__main__":  # rewrite docs/features.md's generated section
    import sys
    from pathlib import Path

    path = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/features.md")
    path.write_text(with_builtin_tables(path.read_text(encoding="utf-8")), encoding="utf-8")
