"""Read an input file in chunks and check it against the contract, vectorised (polars).

Every problem names the file, the 1-based data row (header excluded) and the column. A file
with any problem is rejected whole. Files are read a chunk at a time (CSV: pyarrow's
streaming reader; Parquet: row-group batches), so memory does not grow with the file: a
``FileCheck`` yields each chunk's clean typed rows and keeps only what spans chunks (the
hashes of keys, for duplicates, and the distinct customer ids).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from predelinq.ingest.contract import TableSpec
from predelinq.ingest.convert import KIND_WORDS, check_column, empty_column
from predelinq.ingest.problems import MAX_PROBLEMS_PER_FILE, IngestError, Problem, clip

# A CSV block holds whole rows: a row longer than this cannot be read (reported as such).
CSV_BLOCK_BYTES = 4 << 20
PARQUET_BATCH_ROWS = 250_000
READ_CHUNK_BYTES = 16 << 20  # the quote count's read size


@dataclass
class FileCheck:
    """One input file, read and checked a chunk at a time.

    ``chunks()`` yields clean typed chunks (contract columns in order) until the first
    problem, then reads on without yielding to list up to ``MAX_PROBLEMS_PER_FILE``;
    ``finish()`` adds what needs the whole file (duplicate keys) and returns the problems.
    Raises ``IngestError`` for a file that cannot be read at all (type, header, columns).
    """

    spec: TableSpec
    path: Path
    now: datetime | None = None
    rows: int = field(default=0, init=False)  # data rows read (ragged rows excluded)
    ignored_columns: tuple[str, ...] = field(default=(), init=False)
    problems: list[Problem] = field(default_factory=list, init=False)
    progress: tuple[int, int] = field(default=(0, 0), init=False)  # CSV: bytes; Parquet: rows
    # data rows of ragged CSV rows, skipped; the row numbers of later rows are corrected
    _skipped: list[int] = field(default_factory=list, init=False)
    _row_problems: list[tuple[int, str, str]] = field(default_factory=list, init=False)
    _hashes: list[pl.DataFrame] = field(default_factory=list, init=False)
    _last_row_multiline: bool = field(default=False, init=False)
    _ids: list[pl.Series] = field(default_factory=list, init=False)  # each chunk's distinct ids

    def chunks(self) -> Iterator[pl.DataFrame]:
        first_seen = (self.now or datetime.now(UTC)).replace(tzinfo=None)
        for raw in self._raw_chunks():
            frame, problems = _check_chunk(self.spec, raw, first_row=self.rows + 1)
            self.rows += raw.height
            self._row_problems += problems
            self._remember(frame)
            self._last_row_multiline = raw.height > 0 and bool(
                raw.tail(1).select(pl.any_horizontal(pl.col(pl.String).str.contains("\n"))).item()
            )
            if self.problems or self._row_problems:
                if len(self.problems) + len(self._row_problems) >= MAX_PROBLEMS_PER_FILE:
                    return
                continue
            if self.spec.name == "customers":
                frame = frame.with_columns(pl.col("created_at").fill_null(first_seen))
            yield frame

    def finish(self) -> list[Problem]:
        """Every problem of the file, first rows first, with rows counted in the file."""
        found = [
            (_file_row(row, self._skipped), column, message)
            for row, column, message in self._row_problems + self._duplicates()
        ]
        problems = self.problems + [
            Problem(str(self.path), message, row, column) for row, column, message in found
        ]
        csv = self.path.suffix.lower() == ".csv"
        if csv and self._last_row_multiline and not self.problems and _odd_quotes(self.path):
            total = self.rows + len(self._skipped)
            message = "unterminated quote: a quoted value runs to the end of the file"
            problems.append(Problem(str(self.path), message, total or None))
        problems.sort(key=lambda problem: problem.row or 0)
        return problems[:MAX_PROBLEMS_PER_FILE]

    def _raw_chunks(self) -> Iterator[pl.DataFrame]:
        """The file's contract columns, renamed to the contract's names, a chunk at a time."""
        suffix = self.path.suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq"):
            raise IngestError([Problem(str(self.path), "unknown file type: use .csv or .parquet")])
        try:
            if suffix == ".csv":
                yield from self._csv_chunks()
            else:
                yield from self._parquet_chunks()
        except (OSError, pa.ArrowException, pl.exceptions.PolarsError) as error:
            message = f"cannot be read: {clip(str(error).strip(), 200)}"
            raise IngestError([Problem(str(self.path), message)]) from error

    def _columns(self, names: list[str]) -> dict[str, str]:
        """Contract name -> the file's name for it; raises for missing or repeated columns."""
        by_name: dict[str, list[str]] = {}
        for name in names:
            by_name.setdefault(name.strip().lower(), []).append(name)
        wanted = set(self.spec.column_names)
        problems = [
            Problem(
                str(self.path),
                "given more than once (names are matched case-insensitively): "
                + ", ".join(repr(clip(name)) for name in given),
                column=name,
            )
            for name, given in by_name.items()
            if name in wanted and len(given) > 1
        ]
        problems += [
            Problem(str(self.path), "missing required column", column=name)
            for name in self.spec.required_names
            if name not in by_name
        ]
        if problems:
            raise IngestError(problems)
        self.ignored_columns = tuple(
            clip(name) for name in names if name.strip().lower() not in wanted
        )
        return {name: by_name[name][0] for name in self.spec.column_names if name in by_name}

    def _csv_chunks(self) -> Iterator[pl.DataFrame]:
        read = pacsv.ReadOptions(use_threads=False, block_size=CSV_BLOCK_BYTES)
        parse = pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=lambda _: "skip")
        names = pacsv.open_csv(self.path, read_options=read, parse_options=parse).schema.names
        columns = self._columns(names)
        parse = pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=self._ragged)
        convert = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in columns.values()},
            include_columns=list(columns.values()),
        )
        total = self.path.stat().st_size
        with pa.OSFile(str(self.path)) as source:
            reader = pacsv.open_csv(
                source, read_options=read, parse_options=parse, convert_options=convert
            )
            for batch in reader:
                self.progress = (min(source.tell(), total), total)
                yield _renamed(batch, columns)
        self.progress = (total, total)

    def _ragged(self, row: pacsv.InvalidRow) -> str:
        """pyarrow's handler for a row with too few or too many fields: a problem, skipped.
        ``row.number`` counts records (a quoted newline stays inside its record), header
        included, so the data row is one less."""
        data_row = row.number - 1 if row.number is not None else None
        if data_row is not None:
            self._skipped.append(data_row)
        message = f"{row.actual_columns} field(s) where the header has {row.expected_columns}"
        if '"' in row.text:
            message += " (check its quotes: a quote left open runs on into the next rows)"
        self.problems.append(Problem(str(self.path), message, data_row))
        return "skip"

    def _parquet_chunks(self) -> Iterator[pl.DataFrame]:
        with pq.ParquetFile(self.path) as parquet:
            yield from self._parquet_batches(parquet)

    def _parquet_batches(self, parquet: pq.ParquetFile) -> Iterator[pl.DataFrame]:
        schema = parquet.schema_arrow
        columns = self._columns(schema.names)
        kinds = {column.name: column.kind for column in self.spec.columns}
        problems = []
        for name, source in columns.items():
            arrow_type = schema.field(source).type
            if pa.types.is_nested(arrow_type):
                message = f"nested values ({clip(str(arrow_type))}) are not supported: one "
                message += f"{KIND_WORDS[kinds[name]]} per row"
                problems.append(Problem(str(self.path), message, column=name))
            elif pa.types.is_boolean(arrow_type) and kinds[name] in ("float", "int"):
                message = f"booleans are not {KIND_WORDS[kinds[name]]}: write numbers"
                problems.append(Problem(str(self.path), message, column=name))
        if problems:
            raise IngestError(problems)
        total = parquet.metadata.num_rows
        done = 0
        for batch in parquet.iter_batches(
            batch_size=PARQUET_BATCH_ROWS, columns=list(columns.values())
        ):
            done += batch.num_rows
            self.progress = (done, total)
            yield _renamed(batch, columns)

    def _remember(self, frame: pl.DataFrame) -> None:
        """What spans chunks: two hashes of each row's key, 64 and 32 bits, 12 bytes a row
        (for duplicates; a false match of both is about n^2 / 2^97), and the distinct ids."""
        spec = self.spec
        has_key = pl.all_horizontal(pl.col(spec.key).is_not_null())
        by_key = [pl.struct(spec.key).hash(seed) for seed in (0, 1)]
        if spec.key_optional:
            by_row = [pl.struct(spec.row_columns).hash(seed) for seed in (0, 1)]
            pairs = zip(by_key, by_row, strict=True)
            by_key = [pl.when(has_key).then(key).otherwise(row) for key, row in pairs]
        self._hashes.append(
            frame.select(has_key=has_key, h0=by_key[0], h1=(by_key[1] % (1 << 32)).cast(pl.UInt32))
        )
        if "customer_id" in frame.columns:
            self._ids.append(frame["customer_id"].drop_nulls().unique())
            if len(self._ids) > 64:
                self._ids = [self.customer_ids]

    @property
    def customer_ids(self) -> pl.Series:
        """The distinct customer ids of the rows read so far."""
        return pl.concat([pl.Series("customer_id", [], pl.String), *self._ids]).unique()

    def _duplicates(self) -> list[tuple[int, str, str]]:
        """(row, column, message) for rows whose key repeats an earlier row of the file."""
        if not self._hashes:
            return []
        # Sorting one column finds whether any hash repeats, with far less memory than a
        # hash table over every row; only then are the rows of the repeated hashes looked up.
        h0 = pl.concat([hashes["h0"] for hashes in self._hashes]).sort()
        repeated = h0.filter(h0 == h0.shift(1)).unique().implode()
        del h0
        parts, offset = [], 1
        for hashes in self._hashes:  # row k of the file's kept rows is hash k - 1
            rows = hashes.with_row_index("row", offset=offset)
            parts.append(rows.filter(pl.col("h0").is_in(repeated)))
            offset += hashes.height
        self._hashes = []
        first = pl.col("row").min().over("h0", "h1")
        repeats = (
            pl.concat(parts)
            .with_columns(first=first)
            .filter(pl.col("row") != pl.col("first"))
            .sort("row")
            .head(MAX_PROBLEMS_PER_FILE)
        )
        key_column = ", ".join(self.spec.key)
        found = []
        for has_key, row, first_row in repeats.select("has_key", "row", "first").iter_rows():
            if has_key:
                message = f"duplicate key: same {key_column} as row"
            else:
                message = f"duplicate row: no {key_column} and every other column equal to row"
            found.append((row, key_column, f"{message} {_file_row(first_row, self._skipped)}"))
        return found


def _renamed(batch: pa.RecordBatch, columns: dict[str, str]) -> pl.DataFrame:
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    return frame.select(pl.col(source).alias(name) for name, source in columns.items())


def _file_row(kept_row: int, skipped: list[int]) -> int:
    """The data row of the ``kept_row``-th row read, counting the skipped (ragged) rows."""
    row = kept_row
    for skipped_row in sorted(skipped):
        if skipped_row > row:
            break
        row += 1
    return row


def _odd_quotes(path: Path) -> bool:
    """An odd number of quote characters: a quote opened and never closed. pyarrow reads
    such a value to the end of the file without complaint when the field count still fits;
    asked only when the last row holds a line break, as such a value does."""
    count = 0
    with path.open("rb") as source:
        while block := source.read(READ_CHUNK_BYTES):
            count += block.count(b'"')
    return count % 2 == 1


def _check_chunk(
    spec: TableSpec, raw: pl.DataFrame, *, first_row: int
) -> tuple[pl.DataFrame, list[tuple[int, str, str]]]:
    """Convert one chunk to the contract's types; (kept row, column, message) problems."""
    problems: list[tuple[int, str, str]] = []
    converted: dict[str, pl.Series] = {}
    for column in spec.columns:
        if column.name not in raw.columns:
            converted[column.name] = empty_column(column, raw.height)
            continue
        converted[column.name], column_problems = check_column(column, raw[column.name])
        problems += [(first_row + row - 1, column.name, text) for row, text in column_problems]
    return pl.DataFrame(converted), problems
