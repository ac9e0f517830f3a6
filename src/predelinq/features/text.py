"""Text columns as dictionary codes: compared, tested and taken without building strings per row."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc


class LazyTexts(Mapping[str, "Text"]):
    """Text columns in row order, dictionary-encoded on first use (a feature set that never
    asks for ``merchant_id`` never pays for encoding millions of ids)."""

    def __init__(
        self,
        columns: dict[str, pa.ChunkedArray],
        order: np.ndarray,
        categories: Mapping[str, str],
    ) -> None:
        self.columns, self.order, self.categories = columns, order, categories
        self.encoded: dict[str, Text] = {}

    def __getitem__(self, name: str) -> Text:
        if name not in self.encoded:
            text = Text.of(self.columns[name])
            if name == "category":
                text = text.mapped(self.categories)
            self.encoded[name] = text.take(self.order)
        return self.encoded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)


class SlicedTexts(Mapping[str, "Text"]):
    def __init__(self, texts: Mapping[str, Text], lo: int, hi: int) -> None:
        self.texts, self.lo, self.hi = texts, lo, hi

    def __getitem__(self, name: str) -> Text:
        text = self.texts[name]
        return Text(text.codes[self.lo : self.hi], text.values)

    def __iter__(self) -> Iterator[str]:
        return iter(self.texts)

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Text:
    """A text column as dictionary codes (-1: empty) into ``values``."""

    codes: npt.NDArray[np.int32]
    values: list[str | None]

    @classmethod
    def of(cls, column: pa.ChunkedArray | pa.Array) -> Text:
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if not is_text(column.type):  # an empty column a driver typed otherwise
            column = pc.cast(column, pa.string())
        elif column.type == pa.string_view():
            column = pc.cast(column, pa.large_string())
        encoded = pc.dictionary_encode(column)
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        values = encoded.dictionary.to_pylist()
        if "" in values:  # empty text is an empty value, as in a CSV file
            codes = np.where(codes == values.index(""), -1, codes)
        return cls(codes.astype(np.int32, copy=False), values)

    def mapped(self, mapping: Mapping[str, str]) -> Text:
        """Values replaced through ``mapping`` (unmapped ones kept), equal values merged."""
        if not mapping:
            return self
        renamed = [mapping.get(v, v) if v is not None else None for v in self.values]
        distinct = list(dict.fromkeys(renamed))
        new_code = np.array([distinct.index(v) for v in renamed] + [-1], dtype=np.int32)
        return Text(new_code[self.codes], distinct)  # code -1 picks the appended -1

    def take(self, rows: np.ndarray) -> Text:
        return Text(self.codes[rows], self.values)

    def matching(self, test: Callable[[str], bool]) -> np.ndarray:
        """Rows whose (non-empty) value passes ``test``."""
        passes = np.array([v is not None and test(v) for v in self.values] + [False], np.bool_)
        return passes[self.codes]

    def equals(self, value: str) -> np.ndarray:
        return self.matching(lambda v: v == value)

    def isin(self, values: Iterable[str]) -> np.ndarray:
        allowed = set(values)
        return self.matching(lambda v: v in allowed)


def is_text(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or kind == pa.string_view()
    )
