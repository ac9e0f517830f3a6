"""Read an input file and check it against the contract, vectorised (polars).

Every problem names the file, the 1-based data row and the column. A file with any
problem is rejected whole: ``validate_file`` either returns clean typed data or raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from predelinq.ingest.contract import ColumnSpec, TableSpec

MAX_PROBLEMS_PER_FILE = 20
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


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file."""

    file: str
    message: str
    row: int | None = None  # 1-based data row, header excluded
    column: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.message}"


class IngestError(Exception):
    """Input rejected; nothing was written. Carries every problem found (up to a limit)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


@dataclass(frozen=True)
class ValidFile:
    """A file that passed validation: typed rows in contract column order."""

    spec: TableSpec
    path: Path
    frame: pl.DataFrame
    ignored_columns: tuple[str, ...]


def read_file(path: Path) -> pl.DataFrame:
    """Read CSV (all columns as text, so bad values can be reported) or Parquet. A path is
    a file's name, never a pattern: polars would read `[red]customers.csv` as a glob."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema=False, glob=False)
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path, glob=False)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise IngestError([Problem(str(path), f"cannot be read: {error}")]) from error
    raise IngestError([Problem(str(path), "unknown file type: use .csv or .parquet")])


def validate_file(spec: TableSpec, path: Path, *, now: datetime | None = None) -> ValidFile:
    """Check a file against ``spec``; return its typed rows or raise ``IngestError``."""
    raw = read_file(path)
    raw = raw.rename({name: name.strip().lower() for name in raw.columns})
    missing = [name for name in spec.required_names if name not in raw.columns]
    if missing:
        raise IngestError(
            [Problem(str(path), "missing required column", column=name) for name in missing]
        )
    ignored = tuple(name for name in raw.columns if name not in spec.column_names)
    problems: list[Problem] = []
    converted: dict[str, pl.Series] = {}
    for column in spec.columns:
        if column.name not in raw.columns:
            converted[column.name] = _empty_column(column, raw.height)
            continue
        converted[column.name], column_problems = _check_column(column, raw[column.name])
        problems += [
            Problem(str(path), message, row, column.name) for row, message in column_problems
        ]
    frame = pl.DataFrame(converted)
    problems += [
        Problem(str(path), message, row, column)
        for row, column, message in _duplicates(spec, frame)
    ]
    if problems:
        problems.sort(key=lambda problem: problem.row or 0)
        raise IngestError(problems[:MAX_PROBLEMS_PER_FILE])
    if spec.name == "customers":
        first_seen = (now or datetime.now(UTC)).replace(tzinfo=None)
        frame = frame.with_columns(pl.col("created_at").fill_null(first_seen))
    return ValidFile(spec, path, frame, ignored)


def _empty_column(column: ColumnSpec, height: int) -> pl.Series:
    return pl.Series(column.name, [None] * height, dtype=_dtype(column))


def _dtype(column: ColumnSpec) -> pl.DataType:
    return {
        "text": pl.String(),
        "float": pl.Float64(),
        "int": pl.Int64(),
        "timestamp": pl.Datetime("us"),
        "date": pl.Date(),
    }[column.kind]


def _check_column(column: ColumnSpec, raw: pl.Series) -> tuple[pl.Series, list[tuple[int, str]]]:
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
            problems.append((index + 1, template.format(value=shown[index])))
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
        return pl.Series([None] * len(raw), dtype=pl.Datetime("us"))
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
        return pl.Series([None] * len(raw), dtype=pl.Date)
    return raw.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)


def _duplicates(spec: TableSpec, frame: pl.DataFrame) -> list[tuple[int, str, str]]:
    """(row, column, message) for rows whose key repeats an earlier row of the same file."""
    indexed = frame.with_row_index("row")
    key_column = ", ".join(spec.key)
    has_key = pl.all_horizontal(pl.col(spec.key).is_not_null())
    groups = [(list(spec.key), indexed.filter(has_key), f"duplicate key: same {key_column} as row")]
    if spec.key_optional:
        groups.append(
            (
                spec.row_columns,
                indexed.filter(~has_key),
                f"duplicate row: no {key_column} and every other column equal to row",
            )
        )
    found: list[tuple[int, str, str]] = []
    for columns, rows, message in groups:
        first = pl.col("row").min().over(columns)
        repeats = rows.with_columns(first=first).filter(pl.col("row") != pl.col("first"))
        for row, first_row in (
            repeats.select("row", "first").head(MAX_PROBLEMS_PER_FILE).iter_rows()
        ):
            found.append((row + 1, key_column, f"{message} {first_row + 1}"))
    return found
