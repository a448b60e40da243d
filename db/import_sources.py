"""Reading the files shops export, row by row, with the place of every row: CSV (also gzip-compressed),
Excel workbooks (``.xlsx``, read-only streaming with openpyxl) and Parquet (pyarrow, batch by batch).

Every source gives the same thing: a header (the column names) and records of cells as text, each with the
place it came from (the physical line of a CSV file with the header as line 1, the row number of a worksheet,
the row of a Parquet file counted the same way), so an error names where to look. The format is chosen by the
file's extension (:func:`open_source`).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import gzip
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Protocol

import openpyxl
import pyarrow.parquet as pq

from db.errors import CsvImportError

#: Extensions :func:`open_source` reads, and the reader of each.
FORMATS: dict[str, str] = {
    ".csv": "CSV",
    ".txt": "CSV",
    ".tsv": "CSV",
    ".csv.gz": "CSV, gzip-compressed",
    ".xlsx": "Excel workbook (first sheet, or --sheet)",
    ".parquet": "Parquet",
}


class TabularSource(Protocol):
    """What the importer reads: a header, then records (place, cells as text, problem with the record)."""

    label: str

    @property
    def size(self) -> int: ...
    @property
    def bytes_read(self) -> int: ...
    def __enter__(self) -> TabularSource: ...
    def __exit__(self, *_exc: object) -> None: ...
    def header(self) -> list[str]: ...
    def records(self) -> Iterator[tuple[int, list[str], str | None]]: ...


def file_format(path: Path) -> str:
    """The format key of ``path`` (an entry of :data:`FORMATS`), or a clear error naming the known ones."""
    name = path.name.lower()
    for ext in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    known = ", ".join(f"{ext} ({what})" for ext, what in FORMATS.items())
    raise CsvImportError(path.name, f"has an extension the importer does not read; it reads {known}")


def open_source(path: Path, *, encoding: str, delimiter: str, sheet: str | None = None) -> TabularSource:
    """The reader of ``path`` by its extension."""
    if not path.is_file():
        raise CsvImportError(str(path), "file not found")
    ext = file_format(path)
    if ext == ".xlsx":
        return XlsxSource(path, sheet)
    if ext == ".parquet":
        return ParquetSource(path)
    return CsvSource(path, encoding, "\t" if ext == ".tsv" and delimiter == "," else delimiter)


def cell_text(value: Any) -> str:
    """A spreadsheet or Parquet value as the text a CSV export would hold (whole floats without ".0")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | int):
        return str(value)
    return str(value)


def _check_header(header: list[str], label: str) -> list[str]:
    header = [cell.strip() for cell in header]
    if not any(header):
        raise CsvImportError(label, "the header line is empty", line=1)
    return header


class XlsxSource:
    """The rows of one worksheet of an ``.xlsx`` workbook (openpyxl in read-only mode: streamed, not loaded
    whole). Row numbers are the worksheet's; formulas give their cached values."""

    def __init__(self, path: Path, sheet: str | None) -> None:
        self.label = path.name
        self.size = path.stat().st_size
        self.bytes_read = 0
        try:
            self._book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises zipfile, KeyError and its own errors for broken files
            raise CsvImportError(
                self.label, f"is not a readable Excel workbook ({type(exc).__name__}: {exc})"
            ) from None
        if sheet is not None and sheet not in self._book.sheetnames:
            raise CsvImportError(
                self.label, f"has no sheet {sheet!r}; its sheets are: {', '.join(self._book.sheetnames)}"
            )
        self._sheet = self._book[sheet] if sheet is not None else self._book.worksheets[0]
        self._rows = self._sheet.iter_rows(values_only=True)
        self._total = max(1, int(self._sheet.max_row or 1))
        self._header: list[str] = []

    def __enter__(self) -> XlsxSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._book.close()

    def header(self) -> list[str]:
        first = next(self._rows, None)
        if first is None:
            raise CsvImportError(self.label, "the worksheet is empty; expected a header row")
        self._header = _check_header([cell_text(v) for v in first], self.label)
        return self._header

    def records(self) -> Iterator[tuple[int, list[str], str | None]]:
        width = len(self._header)
        for number, values in enumerate(self._rows, start=2):
            cells = [cell_text(v) for v in values]
            while len(cells) > width and not cells[-1]:
                cells.pop()  # trailing empty cells of a worksheet's used range
            self.bytes_read = int(self.size * min(1.0, number / self._total))
            if not any(c.strip() for c in cells):
                continue
            cells += [""] * (width - len(cells))
            problem = None if len(cells) == width else f"has {len(cells)} cells but the header has {width}"
            yield number, cells, problem


class ParquetSource:
    """The rows of a Parquet file, read batch by batch (pyarrow); row N of the data is "line" N + 1, as in a
    CSV file with a header."""

    def __init__(self, path: Path, batch_size: int = 10_000) -> None:
        self.label = path.name
        self.size = path.stat().st_size
        self.bytes_read = 0
        try:
            self._file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow's ArrowInvalid and OSError for broken files
            raise CsvImportError(self.label, f"is not a readable Parquet file ({exc})") from None
        self._batch_size = batch_size
        self._total = max(1, self._file.metadata.num_rows)
        self._header: list[str] = []

    def __enter__(self) -> ParquetSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._file.close()

    def header(self) -> list[str]:
        self._header = _check_header(list(self._file.schema_arrow.names), self.label)
        return self._header

    def records(self) -> Iterator[tuple[int, list[str], str | None]]:
        number = 1
        for batch in self._file.iter_batches(batch_size=self._batch_size):
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            for row in zip(*columns, strict=True):
                number += 1
                yield number, [cell_text(v) for v in row], None
            self.bytes_read = int(self.size * min(1.0, (number - 1) / self._total))


def _raise_csv_field_limit() -> None:
    # News bodies and review texts can exceed the csv module's default 128 KiB per field.
    limit = 50 * 1024 * 1024
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


class CsvSource:
    """Reads a CSV file as decoded physical lines, so that a decoding error names its line."""

    def __init__(self, path: Path, encoding: str, delimiter: str) -> None:
        _raise_csv_field_limit()
        self.path = path
        self.label = path.name
        self.size = path.stat().st_size
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            raise CsvImportError(
                self.label, f"unknown encoding {encoding!r} (try utf-8 or latin-1)"
            ) from None
        if len(delimiter) != 1:
            raise CsvImportError(self.label, f"the delimiter must be one character, got {delimiter!r}")
        self.encoding = encoding
        # Splitting bytes at b"\n" needs an ASCII-compatible encoding; UTF-16/32 is decoded as a stream.
        self._by_line = not codec.startswith(("utf-16", "utf-32"))
        self._codec = "utf-8-sig" if codec == "utf-8" else codec
        self.delimiter = delimiter
        self.bytes_read = 0
        self.line_no = 0
        self._header: list[str] = []
        self._raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 (closed by __exit__)
        self._fh: IO[bytes] = self._raw
        if path.name.lower().endswith(".gz"):
            self._fh = gzip.GzipFile(fileobj=self._raw, mode="rb")  # type: ignore[assignment]
        stream = self._lines() if self._by_line else self._stream_lines()
        self._reader = csv.reader(stream, delimiter=delimiter)

    def __enter__(self) -> CsvSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._fh.close()
        self._raw.close()

    def _lines(self) -> Iterator[str]:
        codec = self._codec
        for raw in self._fh:
            self.line_no += 1
            self.bytes_read = self._raw.tell()
            try:
                yield raw.decode(codec)
            except UnicodeDecodeError as exc:
                raise self._decode_error(raw, exc) from None
            if codec == "utf-8-sig":
                codec = "utf-8"  # a byte-order mark can only open the file

    def _stream_lines(self) -> Iterator[str]:
        text = io.TextIOWrapper(self._fh, encoding=self._codec, newline="")
        try:
            for line in text:
                self.line_no += 1
                self.bytes_read = self._raw.tell()
                yield line
        except UnicodeError as exc:
            reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise CsvImportError(
                self.label,
                f"cannot be decoded as {self.encoding} ({reason}); check --encoding (e.g. utf-8 or latin-1)",
                line=self.line_no + 1,
            ) from None

    def _decode_error(self, raw: bytes, exc: UnicodeDecodeError) -> CsvImportError:
        suggestion = _suggest_encoding(raw, self.encoding)
        shown = raw.decode(self._codec, errors="backslashreplace")
        marked = raw.decode(self._codec, errors="replace")
        column: str | None = None
        value = shown.rstrip("\r\n")
        try:
            shown_cells = next(csv.reader([shown], delimiter=self.delimiter))
            marked_cells = next(csv.reader([marked], delimiter=self.delimiter))
        except (csv.Error, StopIteration):
            shown_cells = marked_cells = []
        if len(shown_cells) == len(marked_cells):
            for i, cell in enumerate(marked_cells):
                if "\ufffd" in cell:
                    column = self._header[i] if i < len(self._header) else f"field {i + 1}"
                    value = shown_cells[i]
                    break
        byte = raw[exc.start]
        return CsvImportError(
            self.label,
            f"is not valid {self.encoding} text (byte 0x{byte:02x}); the file looks {suggestion}-encoded: "
            f"import it with --encoding {suggestion}",
            line=self.line_no,
            column=column,
            value=value,
        )

    def header(self) -> list[str]:
        try:
            first = next(self._reader)
        except StopIteration:
            raise CsvImportError(self.label, "the file is empty; expected a header line") from None
        except csv.Error as exc:
            raise CsvImportError(self.label, f"is not valid CSV: {exc}", line=1) from None
        self._header = [cell.strip() for cell in first]
        if not any(self._header):
            raise CsvImportError(self.label, "the header line is empty", line=1)
        return self._header

    def records(self) -> Iterator[tuple[int, list[str], str | None]]:
        """(physical line where the record starts, cells, problem with its shape); skips blank lines."""
        reader = self._reader
        width = len(self._header)
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise CsvImportError(self.label, f"is not valid CSV: {exc}", line=start) from None
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            problem = None
            if len(cells) != width:
                problem = (
                    f"has {len(cells)} fields but the header has {width}; check quoting and the delimiter"
                )
            yield start, cells, problem


def _suggest_encoding(raw: bytes, current: str) -> str:
    candidates = []
    if codecs.lookup(current).name != "utf-8":
        candidates.append("utf-8")
    if any(0x80 <= b <= 0x9F for b in raw):
        candidates.append("cp1252")
    for candidate in candidates:
        try:
            raw.decode(candidate)
        except UnicodeDecodeError:
            continue
        return candidate
    return "latin-1"
