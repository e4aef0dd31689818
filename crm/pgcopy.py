"""PostgreSQL's binary COPY format, written and read as numpy arrays: a million rows in a fraction of a second.

A full recompute moves one row per customer out of the database and one back. Row by row through the driver
that costs microseconds per value in Python, i.e. tens of seconds for a million customers; in COPY's binary
format every row of fixed-width columns has the same layout, so a numpy structured array *is* the payload.

Only fixed-width, non-null columns: int2/int4/int8, float8, bool, timestamp (naive UTC, as the hub
stores it) and "charN", one text of exactly N bytes repeated in every row (e.g. a currency code). A NULL has
another length and would break the fixed layout, so callers send a sentinel (NaN, 0) and turn it into NULL
in SQL (NULLIF, CASE). Text goes through COPY's text format instead (`text_copy_line`).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # signature, flags, no extension
TRAILER = b"\xff\xff"
_POSTGRES_EPOCH_S = 946_684_800  # 2000-01-01, where PostgreSQL's binary timestamps count from
KINDS = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8", "bool": "?", "timestamp": ">i8"}


def _numpy_type(kind: str) -> str:
    if kind.startswith("char") and kind[4:].isdigit():
        return f"S{int(kind[4:])}"
    return KINDS[kind]


def row_dtype(kinds: Sequence[str]) -> np.dtype:
    """The layout of one binary COPY row of these column kinds: field count, then (length, value) per field."""
    fields: list[tuple[str, str]] = [("fields", ">i2")]
    for i, kind in enumerate(kinds):
        fields += [(f"length{i}", ">i4"), (f"value{i}", _numpy_type(kind))]
    return np.dtype(fields)  # packed: no padding, as on the wire


def encode(columns: Sequence[tuple[str, np.ndarray]]) -> bytes:
    """Return a whole `COPY ... FROM STDIN (FORMAT binary)` payload, one row per element of the columns.

    A "timestamp" column is given in epoch seconds (int or float), a "charN" column as one bytes value. The
    array columns must all have the same length.
    """
    return HEADER + encode_rows(columns) + TRAILER


def encode_rows(columns: Sequence[tuple[str, np.ndarray]]) -> bytes:
    """Return the rows alone, to send in parts between one HEADER and one TRAILER (see `encode`)."""
    kinds = [kind for kind, _ in columns]
    count = next((len(values) for _, values in columns if not isinstance(values, bytes)), 0)
    rows = np.empty(count, dtype=row_dtype(kinds))
    rows["fields"] = len(columns)
    for i, (kind, values) in enumerate(columns):
        rows[f"length{i}"] = np.dtype(_numpy_type(kind)).itemsize
        if kind.startswith("char") and not (isinstance(values, bytes) and len(values) == int(kind[4:])):
            raise ValueError(f"a {kind} column is one bytes value of length {kind[4:]}")
        if kind == "timestamp":
            values = np.rint((np.asarray(values, dtype=np.float64) - _POSTGRES_EPOCH_S) * 1e6).astype(np.int64)
        rows[f"value{i}"] = values
    return rows.tobytes()


def decode(chunks: Iterator[bytes], kinds: Sequence[str], rows_per_part: int) -> Iterator[dict[str, np.ndarray]]:
    """Read a `COPY ... TO STDOUT (FORMAT binary)` stream of non-null fixed-width columns, `rows_per_part` rows
    at a time; yield each part as {"value0": array, ...} in native byte order (timestamps as epoch seconds).

    Raises:
        ValueError: the stream is not binary COPY of these kinds (e.g. a NULL came through).
    """
    dtype = row_dtype(kinds)
    buffer = bytearray()
    header_done = False
    for chunk in chunks:
        buffer += chunk
        if not header_done:
            if len(buffer) < len(HEADER):
                continue
            if bytes(buffer[:11]) != HEADER[:11]:
                raise ValueError("not a binary COPY stream")
            del buffer[:len(HEADER)]
            header_done = True
        whole = len(buffer) // dtype.itemsize
        while whole >= rows_per_part:
            yield _part(buffer, dtype, kinds, rows_per_part)
            whole -= rows_per_part
    if not header_done or bytes(buffer[-2:]) != TRAILER:
        raise ValueError("the binary COPY stream ended early")
    del buffer[-2:]
    if len(buffer) % dtype.itemsize:
        raise ValueError("the binary COPY rows are not of the expected layout (a NULL, or another type)")
    if buffer:
        yield _part(buffer, dtype, kinds, len(buffer) // dtype.itemsize)


def _part(buffer: bytearray, dtype: np.dtype, kinds: Sequence[str], count: int) -> dict[str, np.ndarray]:
    rows = np.frombuffer(bytes(buffer[:count * dtype.itemsize]), dtype=dtype)
    del buffer[:count * dtype.itemsize]
    if np.any(rows["fields"] != len(kinds)):
        raise ValueError("the binary COPY rows do not have the expected number of columns")
    part = {}
    for i, kind in enumerate(kinds):
        if np.any(rows[f"length{i}"] != np.dtype(_numpy_type(kind)).itemsize):
            raise ValueError(f"column {i} is NULL or not {kind} in the binary COPY stream")
        values = rows[f"value{i}"].astype(np.dtype(_numpy_type(kind)).newbyteorder("="))
        if kind == "timestamp":
            values = values // 1_000_000 + _POSTGRES_EPOCH_S
        part[f"value{i}"] = values
    return part


ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})  # for str.translate


def text_copy_line(values: Sequence[object]) -> str:
    """One line of `COPY ... FROM STDIN` text format: tab-separated, None as \\N, special characters escaped."""
    return "\t".join("\\N" if v is None else str(v).translate(ESCAPES) for v in values) + "\n"
