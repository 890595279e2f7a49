"""Control files a sound designer can open, edit and feed back: CSV (spreadsheets) and JSON.

CSV: two columns with a header ``time,<kind>``, one row per frame, times in seconds (frame left edges)::

    time,energy
    0.0,-11.5129
    0.01,-11.5129
    0.02,-4.2

The rate and start are inferred from the time column, which must increase. A uniformly spaced column
(possibly rounded by a spreadsheet: the rounding is tolerated as long as the spacing stays readable) gives
one frame per row. Rows at uneven times are *keyframes*: the curve is drawn through them on a uniform grid
(:data:`KEYFRAME_RATE` Hz, finer when keyframes are closer; linear between keyframes for continuous kinds,
each keyframe's class held until the next for class kinds, each row an event at its time for event kinds),
from the first keyframe to the last; ``meta["keyframes"]`` records how many there were. A column that is
uneven only because it was rounded to too few decimals is refused (restore the decimals).
A ``;`` separator with decimal commas (spreadsheets in many locales), a tab separator and a UTF-8
byte-order mark are accepted. ``meta`` is not stored in CSV.

Values outside a kind's range (:data:`VALUE_RANGES`: e.g. ``rms`` 0..1) are kept by the reader;
:func:`clamp_to_range` clamps them and says so (the generator does that before using a control).

JSON: ``{"kind": str, "rate": Hz, "start": s, "values": [...], "meta": {...}}``.

Every problem raises :class:`~foleykit.errors.ControlError` naming the file, the line and what to fix.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.controls.base import TemporalControl, is_class_kind, is_event_kind
from foleykit.errors import ControlError
from foleykit.utils.io import atomic_write_text

SUFFIXES = (".csv", ".json")
#: Rate (Hz) of the grid keyframes are interpolated on (finer when keyframes are closer, up to 1 kHz).
KEYFRAME_RATE = 100.0
_MAX_KEYFRAME_RATE = 1000.0
#: Valid values of each kind: (low, high), None = unbounded. RMS is the linear RMS of a signal in [-1, 1]
#: (a full-scale sine has 0.707); onset / event tracks are 0..1 strengths; energy is a log-mel mean whose
#: floor is log(1e-5) (silence); rms_class indices are 0..n_classes-1 (``meta["n_classes"]``, default 64).
VALUE_RANGES: dict[str, tuple[float | None, float | None]] = {
    "rms": (0.0, 1.0),
    "onsets": (0.0, 1.0),
    "events": (0.0, 1.0),
    "energy": (math.log(1e-5), None),
}


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ControlError(
            f"{path}: control files must end in .csv or .json (got {path.suffix or 'no suffix'!r})"
        )
    return suffix


def format_values(control: TemporalControl) -> list[str]:
    """Shortest strings that read back to exactly the same float32 / int values."""
    if control.is_class:
        return [str(int(v)) for v in control.values]
    return [np.format_float_positional(v, unique=True, trim="-") for v in control.values]


def format_times(control: TemporalControl) -> list[str]:
    """Frame times with up to 9 decimals, trailing zeros removed (``0.01``, ``0.033333333``)."""
    out = []
    for t in control.times:
        s = f"{t:.9f}".rstrip("0")
        out.append(s + "0" if s.endswith(".") else s)
    return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def save_control(control: TemporalControl, path: str | PathLike) -> Path:
    """Write ``control`` to a ``.csv`` or ``.json`` file atomically (no partial file on failure)."""
    path = Path(path)
    suffix = _check_suffix(path)
    values = format_values(control)
    if suffix == ".csv":
        lines = [f"time,{control.kind}"]
        lines += [f"{t},{v}" for t, v in zip(format_times(control), values)]
        text = "\n".join(lines) + "\n"
    else:
        doc = {
            "kind": control.kind,
            "rate": control.rate,
            "start": control.start,
            "values": [int(v) for v in values] if control.is_class else [float(v) for v in values],
            "meta": _jsonable(control.meta),
        }
        text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def load_control(path: str | PathLike) -> TemporalControl:
    """Read a control file written by :func:`save_control` or edited by hand / in a spreadsheet.

    Raises:
        ControlError: Missing/empty file, wrong suffix, missing columns or keys, non-numeric or NaN cells,
            decreasing or non-uniform times; the message names the file and line.
    """
    path = Path(path)
    suffix = _check_suffix(path)
    if not path.is_file():
        raise ControlError(f"{path}: control file not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ControlError(f"{path}: not a text file (UTF-8 decoding failed at byte {e.start})") from None
    if not text.strip():
        raise ControlError(
            f"{path}: the file is empty; expected a header line 'time,<kind>' and one row per frame"
            if suffix == ".csv"
            else f"{path}: the file is empty; expected a JSON object"
        )
    try:
        return _parse_csv(text, path) if suffix == ".csv" else _parse_json(text, path)
    except ControlError as e:
        msg = str(e)
        raise ControlError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


# --- JSON ---------------------------------------------------------------------------------------------
def _parse_json(text: str, path: Path) -> TemporalControl:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ControlError(f"{path}: line {e.lineno}, column {e.colno}: invalid JSON ({e.msg})") from None
    if not isinstance(doc, dict):
        raise ControlError(f"{path}: expected a JSON object with keys kind, rate, start, values, meta")
    missing = [k for k in ("kind", "rate", "values") if k not in doc]
    if missing:
        raise ControlError(
            f"{path}: missing key(s) {', '.join(missing)} (a control file has kind, rate, start, "
            f"values and optionally meta)"
        )
    kind = doc["kind"]
    if not isinstance(kind, str):
        raise ControlError(f"{path}: 'kind' must be a string like \"energy\", got {kind!r}")
    for key in ("rate", "start"):
        v = doc.get(key, 0.0)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ControlError(f"{path}: '{key}' must be a finite number, got {v!r}")
    values = doc["values"]
    if not isinstance(values, list) or not values:
        raise ControlError(f"{path}: 'values' must be a non-empty list of numbers")
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ControlError(f"{path}: values[{i}] is {v!r}, not a number")
        if not math.isfinite(v):
            raise ControlError(f"{path}: values[{i}] is {v}; replace it with a finite number")
    meta = doc.get("meta", {})
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ControlError(f"{path}: 'meta' must be an object, got {type(meta).__name__}")
    arr = np.asarray(values, dtype=np.float64)
    return TemporalControl(kind, arr, float(doc["rate"]), float(doc.get("start", 0.0)), meta)


# --- CSV ----------------------------------------------------------------------------------------------
def _parse_number(cell: str, decimal_comma: bool) -> float:
    s = cell.strip().strip('"').strip()
    if decimal_comma:
        s = s.replace(",", ".")
    if not s:
        raise ValueError("empty cell")
    return float(s)


def _decimals(cell: str) -> int:
    s = cell.strip().strip('"').replace(",", ".").lower()
    if "e" in s:
        mant, _, exp = s.partition("e")
        d = len(mant.partition(".")[2])
        return max(0, d - int(exp))
    return len(s.partition(".")[2])


def _parse_csv(text: str, path: Path) -> TemporalControl:
    raw_lines = text.splitlines()
    rows: list[tuple[int, list[str]]] = [(i + 1, line) for i, line in enumerate(raw_lines) if line.strip()]
    header_no, header = rows[0]
    sep = ","
    if "," not in header:
        sep = ";" if ";" in header else "\t" if "\t" in header else ","
    decimal_comma = sep == ";"
    head = [c.strip().strip('"').strip() for c in header.split(sep)]
    while head and not head[-1]:
        head.pop()
    if len(head) != 2 or not head[0].lower().startswith("time"):
        try:
            [_parse_number(c, decimal_comma) for c in head]
            hint = "the header line is missing"
        except ValueError:
            hint = f"found {len(head)} column(s) {head}"
        raise ControlError(
            f"{path}: line {header_no}: expected a header 'time,<kind>' with exactly two columns "
            f"(e.g. 'time,energy'); {hint}"
        )
    kind = head[1]
    if len(rows) < 3:
        raise ControlError(
            f"{path}: need at least two data rows to infer the frame rate from the time column "
            f"(found {len(rows) - 1}); use a JSON file for a single frame"
        )
    times, values, decimals = [], [], 0
    for line_no, line in rows[1:]:
        cells = [c for c in line.split(sep)]
        while len(cells) > 2 and not cells[-1].strip():
            cells.pop()
        if len(cells) != 2:
            raise ControlError(
                f"{path}: line {line_no}: expected 2 cells (time and {kind}), found {len(cells)}: "
                f"{line.strip()!r}"
            )
        for col, (cell, name) in enumerate(zip(cells, ("time", kind))):
            try:
                v = _parse_number(cell, decimal_comma)
            except ValueError:
                raise ControlError(
                    f"{path}: line {line_no}, column {col + 1} ({name}): {cell.strip()!r} is not a number"
                ) from None
            if not math.isfinite(v):
                raise ControlError(
                    f"{path}: line {line_no}, column {col + 1} ({name}): {cell.strip()!r} is not a "
                    f"finite number; replace it"
                )
            (times if col == 0 else values).append(v)
        decimals = max(decimals, _decimals(cells[0]))
    line_nos = [n for n, _ in rows[1:]]
    vals = np.asarray(values, dtype=np.float64)
    if is_class_kind(kind):
        bad = np.flatnonzero(vals != np.rint(vals))
        if bad.size:
            i = int(bad[0])
            raise ControlError(
                f"{path}: line {line_nos[i]}: {kind} holds class indices, {values[i]} is not a whole number"
            )
    try:
        rate, start = _infer_grid(np.asarray(times), decimals, line_nos, path)
    except _Uneven:
        return _from_keyframes(kind, np.asarray(times), vals)
    return TemporalControl(kind, vals, rate, start, {})


class _Uneven(Exception):
    """The time column is not uniformly spaced (and not because of rounding): keyframes."""


def _from_keyframes(kind: str, t: np.ndarray, v: np.ndarray) -> TemporalControl:
    """A control on a uniform grid through keyframes ``(t, v)`` (see the module docstring)."""
    d = np.diff(t)
    est = min(_MAX_KEYFRAME_RATE, max(KEYFRAME_RATE, 1.0 / float(np.median(d))))
    rate = float(round(est)) if abs(est - round(est)) <= 1e-6 * est else est
    n = int(np.floor((t[-1] - t[0]) * rate + 1e-6)) + 1
    grid = t[0] + np.arange(n) / rate
    if is_event_kind(kind):
        out = np.zeros(n)
        idx = np.minimum(np.rint((t - t[0]) * rate).astype(np.int64), n - 1)
        np.maximum.at(out, idx, v)
    elif is_class_kind(kind):
        out = v[np.clip(np.searchsorted(t, grid + 1e-9, side="right") - 1, 0, len(v) - 1)]
    else:
        out = np.interp(grid, t, v)
    return TemporalControl(kind, out, rate, float(t[0]), {"keyframes": len(t)})


def keyframe_note(control: TemporalControl, what: str) -> list[str]:
    """A note when ``control`` was drawn through keyframes (uneven CSV times), else nothing."""
    k = control.meta.get("keyframes")
    if not k:
        return []
    how = (
        "each row an event at its time"
        if control.is_event
        else "each class held until the next keyframe"
        if control.is_class
        else "linear between keyframes"
    )
    return [f"{what} has {k} keyframes at uneven times: drawn at {control.rate:g} Hz ({how})"]


def value_range(control: TemporalControl) -> tuple[float | None, float | None]:
    """The valid ``(low, high)`` values of a control's kind (None: unbounded; unknown kinds: unbounded)."""
    if control.is_class:
        return 0.0, float(int(control.meta.get("n_classes", 64)) - 1)
    return VALUE_RANGES.get(control.kind, (None, None))


def clamp_to_range(control: TemporalControl, what: str) -> tuple[TemporalControl, list[str]]:
    """Clamp values outside the kind's range (:data:`VALUE_RANGES`) and say so.

    A curve edited by hand or scaled in the app may overshoot (``rms`` 5.0 or -0.1): the generator would
    follow an impossible loudness and clip. Clamping keeps every in-range value and the shape below the
    limit; the note names how many values moved, their extremes and the first time.

    Returns:
        ``(control, notes)``; the same object and no note when every value is in range.
    """
    lo, hi = value_range(control)
    v = control.values
    out = (v < lo if lo is not None else np.zeros(v.shape, bool)) | (v > hi if hi is not None else False)
    if not out.any():
        return control, []
    first = int(np.flatnonzero(out)[0])
    clamped = np.clip(v, lo, hi).astype(v.dtype)
    span = f"{'-inf' if lo is None else f'{lo:g}'}..{'inf' if hi is None else f'{hi:g}'}"
    note = (
        f"{what}: {int(out.sum())} of {len(v)} {control.kind} values lie outside {span} (from {v.min():g} to "
        f"{v.max():g}, first at {control.times[first]:.2f} s); they were clamped to that range"
    )
    return control.replace(values=clamped), [note]


def _infer_grid(t: np.ndarray, decimals: int, line_nos: list[int], path: Path) -> tuple[float, float]:
    """Rate and start of a uniformly spaced time column (possibly rounded to ``decimals`` decimals)."""
    d = np.diff(t)
    nonpos = np.flatnonzero(d <= 0)
    if nonpos.size:
        i = int(nonpos[0]) + 1
        raise ControlError(
            f"{path}: line {line_nos[i]}: time {t[i]:g} is not after the previous row's {t[i - 1]:g}; "
            "times must increase (if a spreadsheet rounded the time column, restore more decimals)"
        )
    q = 0.5 * 10.0 ** (-min(decimals, 12))  # rounding half-width of the printed times
    step = float(np.median(d))
    # Rounding to `decimals` moves a spacing by at most 2q; never accept more than a quarter step (a
    # missing or inserted row changes it by a whole step).
    tol = min(2 * q, 0.25 * step) + 1e-3 * step + 1e-12
    coarse = 2 * q > 0.25 * step
    hint = (
        (
            f" (the times have only {decimals} decimal(s) for rows {step:g} s apart: write them with more "
            "decimals)"
        )
        if coarse
        else ""
    )
    bad = np.flatnonzero(np.abs(d - step) > tol)
    if bad.size and not coarse:
        raise _Uneven()
    if bad.size:
        i = int(bad[0]) + 1
        raise ControlError(
            f"{path}: line {line_nos[i]}: time {t[i]:g} breaks the uniform spacing of {step:g} s "
            f"(expected {t[i - 1] + step:g} after {t[i - 1]:g}); rows must be evenly spaced with "
            f"none missing or inserted{hint}"
        )
    n = t.shape[0]
    slope = (t[-1] - t[0]) / (n - 1)
    slack = 2 * q / (n - 1) + 1e-12 * max(1.0, abs(t[-1]))
    rate = None
    est = 1.0 / slope
    # Prefer simple rates (integers, NTSC 1000/1001 rates, short fractions) that explain the column.
    candidates = [round(est), round(est * 1.001) * 1000 / 1001]
    candidates += [float(Fraction(est).limit_denominator(1024))]
    for c in candidates:
        if c > 0 and abs(1.0 / c - slope) <= slack:
            rate = float(c)
            break
    if rate is None:
        rate = est
    start = float(np.mean(t - np.arange(n) / rate))
    if abs(start - t[0]) <= q + 1e-12:
        start = float(t[0])
    resid = np.abs(t - (start + np.arange(n) / rate))
    worst = int(np.argmax(resid))
    if resid[worst] > tol + q and not coarse:
        raise _Uneven()
    if resid[worst] > tol + q:
        raise ControlError(
            f"{path}: line {line_nos[worst]}: time {t[worst]:g} is off the uniform grid "
            f"({1 / rate:g} s spacing from {start:g} s) by {resid[worst]:.3g} s{hint}"
        )
    return rate, start
