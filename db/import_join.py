"""Multi-table exports: the rows of one file completed with the columns of another by a join key.

Marketplaces and shop systems export an order as a header table (order id, time, customer) and an items
table (order id, product, quantity, price). ``import orders items.csv --join orders.csv:order_id`` reads
the items file and adds to each row the header row with the same ``order_id``, so the importer sees one
table; the usual ``--map`` names columns of either file. A column of the joined file whose name the main
file already has is named ``<joined file's stem>.<column>``. The joined file is held in memory (header
tables are the small ones); a key that appears twice there is an error naming both lines, and a main row
whose key the joined file lacks is a bad row like any other (its line named; ``--skip-bad-rows`` sets it
aside).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from db.errors import CsvImportError
from db.import_sources import TabularSource, open_source


def parse_join(spec: str) -> tuple[Path, str]:
    """``FILE:KEY`` as (path, key column); the key is the text after the last colon."""
    path, sep, key = spec.rpartition(":")
    if not sep or not path or not key.strip():
        raise CsvImportError(
            spec, "a join is FILE:KEY (the file to join and its key column), e.g. orders.csv:order_id"
        )
    return Path(path), key.strip()


class JoinedSource:
    """``main`` with the columns of ``lookup`` joined on ``key`` (a column both files have)."""

    def __init__(self, main: TabularSource, lookup: TabularSource, key: str, stem: str) -> None:
        self.main, self.lookup, self.key, self.stem = main, lookup, key, stem
        self.label = main.label
        self._rows: dict[str, list[str]] = {}
        self._main_key = -1
        self._width = 0
        self._main_width = 0

    @property
    def size(self) -> int:
        return self.main.size

    @property
    def bytes_read(self) -> int:
        return self.main.bytes_read

    def __enter__(self) -> JoinedSource:
        self.main.__enter__()
        try:
            with self.lookup:
                self._read_lookup()
        except BaseException:
            self.main.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.main.__exit__(*_exc)

    def _read_lookup(self) -> None:
        header = self.lookup.header()
        if self.key not in header:
            raise CsvImportError(
                self.lookup.label,
                f"has no column {self.key!r} to join on; its columns: {', '.join(header)}",
                line=1,
            )
        k = header.index(self.key)
        self._lookup_header = [c for i, c in enumerate(header) if i != k]
        self._width = len(self._lookup_header)
        first_line: dict[str, int] = {}
        for line, cells, problem in self.lookup.records():
            if problem is not None:
                raise CsvImportError(self.lookup.label, problem, line=line)
            value = cells[k].strip() if k < len(cells) else ""
            if value in first_line:
                raise CsvImportError(
                    self.lookup.label,
                    f"{self.key} {value!r} appears on lines {first_line[value]} and {line}: the joined file "
                    "needs one row per key",
                    line=line,
                )
            first_line[value] = line
            self._rows[value] = [c for i, c in enumerate(cells) if i != k]

    def header(self) -> list[str]:
        main = self.main.header()
        if self.key not in main:
            raise CsvImportError(
                self.main.label,
                f"has no column {self.key!r} to join on; its columns: {', '.join(main)}",
                line=1,
            )
        self._main_key = main.index(self.key)
        self._main_width = len(main)
        taken = set(main)
        return main + [f"{self.stem}.{c}" if c in taken else c for c in self._lookup_header]

    def records(self) -> Iterator[tuple[int, list[str], str | None]]:
        blank = [""] * self._width
        for line, cells, problem in self.main.records():
            if problem is not None:
                yield line, cells, problem
                continue
            if len(cells) > self._main_width:
                yield line, cells, f"has {len(cells)} cells but the header has {self._main_width} columns"
                continue
            row = cells + [""] * (self._main_width - len(cells))
            value = row[self._main_key].strip()
            joined = self._rows.get(value)
            if joined is None:
                yield line, row + blank, f"{self.key} {value!r} is not in {self.lookup.label}"
                continue
            yield line, row + joined, None


def open_joined(
    path: Path, joins: tuple[tuple[Path, str], ...], *, encoding: str, delimiter: str, sheet: str | None
) -> TabularSource:
    """``path``'s reader, with each ``(file, key)`` of ``joins`` joined in turn."""
    source: TabularSource = open_source(path, encoding=encoding, delimiter=delimiter, sheet=sheet)
    for join_path, key in joins:
        lookup = open_source(join_path, encoding=encoding, delimiter=delimiter)
        source = JoinedSource(source, lookup, key, join_path.name.split(".")[0])
    return source
