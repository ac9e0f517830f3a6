"""One column's values checked against its contract and converted to its type: numbers,
timestamps (ISO 8601, naive UTC), dates and text; each problem names its row."""

from __future__ import annotations

import polars as pl

from predelinq.ingest.contract import ColumnSpec
from predelinq.ingest.problems import MAX_PROBLEMS_PER_FILE, clip

# Tried in order, each only on values the ones before could not parse. %z: with an offset.
# Whole-second formats come first: polars parses them several times faster than %.f.
TIMESTAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d",
)


KIND_WORDS = {
    "float": "a number",
    "int": "a whole number",
    "timestamp": "an ISO 8601 timestamp",
    "date": "a date (YYYY-MM-DD)",
    "text": "text",
}


def empty_column(column: ColumnSpec, height: int) -> pl.Series:
    return pl.Series(column.name, dtype=_dtype(column)).clear(height)


def _dtype(column: ColumnSpec) -> pl.DataType:
    return {
        "text": pl.String(),
        "float": pl.Float64(),
        "int": pl.Int64(),
        "timestamp": pl.Datetime("us"),
        "date": pl.Date(),
    }[column.kind]


def check_column(column: ColumnSpec, raw: pl.Series) -> tuple[pl.Series, list[tuple[int, str]]]:
    """Convert one column and list its problems as (row, message), first rows first."""
    values = _convert(column, raw)
    given = raw.is_not_null() & (raw.cast(pl.String) != "").fill_null(False)
    checks: list[tuple[pl.Series, str]] = [
        (given & values.is_null(), f"not {KIND_WORDS[column.kind]}: {{value!r}}"),
    ]
    if column.required:
        checks.append((~given, "missing value"))
    checks += _range_checks(column, values)
    problems: list[tuple[int, str]] = []
    shown = raw.cast(pl.String)
    for mask, template in checks:
        for index in mask.fill_null(False).arg_true().head(MAX_PROBLEMS_PER_FILE).to_list():
            problems.append((index + 1, template.format(value=clip(str(shown[index])))))
    problems.sort()
    return values, problems[:MAX_PROBLEMS_PER_FILE]


def _range_checks(column: ColumnSpec, values: pl.Series) -> list[tuple[pl.Series, str]]:
    checks: list[tuple[pl.Series, str]] = []
    if column.kind == "float":
        checks.append((~values.is_finite(), "not a finite number: {value!r}"))
    if column.minimum is not None:
        below = values <= column.minimum if column.minimum_exclusive else values < column.minimum
        sign = ">" if column.minimum_exclusive else ">="
        checks.append((below, f"must be {sign} {column.minimum:g}, got {{value}}"))
    if column.maximum is not None:
        checks.append((values > column.maximum, f"must be <= {column.maximum:g}, got {{value}}"))
    if column.kind == "text":
        # PostgreSQL text cannot hold NUL; refuse it on both databases alike
        checks.append((values.str.contains("\x00", literal=True), "contains a NUL character"))
    if column.max_length is not None:
        too_long = values.str.len_chars() > column.max_length
        checks.append((too_long, f"longer than {column.max_length} characters"))
    if column.choices:
        expected = ", ".join(column.choices)
        unknown = ~values.is_in(list(column.choices))
        checks.append((unknown, f"unknown value {{value!r}} (expected one of: {expected})"))
    return checks


def _convert(column: ColumnSpec, raw: pl.Series) -> pl.Series:
    """The column in its contract type; values that do not convert become null."""
    if column.kind == "text":
        text = raw.cast(pl.String)
        if column.choices:
            text = text.str.strip_chars().str.to_lowercase()
        return pl.select(pl.when(text != "").then(text)).to_series().alias(column.name)
    if column.kind == "timestamp":
        return _to_timestamp(raw).alias(column.name)
    if column.kind == "date":
        return _to_date(raw).alias(column.name)
    target = _dtype(column)
    if raw.dtype == pl.String:
        return raw.str.strip_chars().cast(target, strict=False)
    if column.kind == "int" and raw.dtype.is_float():
        whole = raw.filter(raw.is_not_null())
        if not (whole == whole.round()).all():
            return pl.select(pl.when(raw == raw.round()).then(raw)).to_series().cast(target)
    return raw.cast(target, strict=False)


def _to_timestamp(raw: pl.Series) -> pl.Series:
    """ISO 8601 to naive UTC: naive values are UTC already, aware ones are converted."""
    if isinstance(raw.dtype, pl.Datetime):
        if raw.dtype.time_zone is not None:
            raw = raw.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return raw.cast(pl.Datetime("us"))
    if raw.dtype == pl.Date:
        return raw.cast(pl.Datetime("us"))
    if raw.dtype != pl.String:
        return pl.Series(dtype=pl.Datetime("us")).clear(len(raw))
    text = raw.str.strip_chars()
    result = _parse_timestamp(text, TIMESTAMP_FORMATS[0])
    for timestamp_format in TIMESTAMP_FORMATS[1:]:
        unparsed = (result.is_null() & text.is_not_null()).arg_true()
        if unparsed.is_empty():
            break
        parsed = _parse_timestamp(text.gather(unparsed), timestamp_format)
        result = result.scatter(unparsed, parsed)
    return result


def _parse_timestamp(text: pl.Series, timestamp_format: str) -> pl.Series:
    # cache=False: timestamps are nearly all distinct, so polars' parse cache only costs.
    if timestamp_format == "%Y-%m-%d":
        parsed_date = text.str.to_date(timestamp_format, strict=False, cache=False)
        return parsed_date.cast(pl.Datetime("us"))
    if timestamp_format.endswith("%z"):
        aware = text.str.replace(r"Z$", "+00:00")
        parsed = aware.str.to_datetime(timestamp_format, strict=False, time_zone="UTC", cache=False)
        return parsed.dt.replace_time_zone(None).cast(pl.Datetime("us"))
    parsed = text.str.to_datetime(timestamp_format, strict=False, cache=False)
    return parsed.cast(pl.Datetime("us"))


def _to_date(raw: pl.Series) -> pl.Series:
    if raw.dtype == pl.Date:
        return raw
    if isinstance(raw.dtype, pl.Datetime):
        return raw.dt.date()
    if raw.dtype != pl.String:
        return pl.Series(dtype=pl.Date).clear(len(raw))
    return raw.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
