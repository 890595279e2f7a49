"""Clip records: a folder of clips or a CSV manifest (path, caption, start, end[, category, ...]).

A manifest is a CSV with a header and the columns ``path, caption, start, end`` (``category`` and any
other column are kept as metadata); ``path`` is relative to the manifest's folder or absolute, ``start`` /
``end`` are seconds (``end`` empty = to the end of the file). This is the shape of VGGSound, Greatest Hits
or a user's own footage, and what ``foleykit data synth`` writes. A folder without a manifest is scanned for
videos; each one's caption comes from a sidecar ``<stem>.json`` ("caption"), ``<stem>.txt``, or its name.
This module imports neither torch nor OpenCV (worker processes load it quickly).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import DataError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
REQUIRED_COLUMNS = ("path", "caption", "start", "end")


@dataclass(frozen=True)
class ClipRecord:
    """One clip of a dataset.

    Attributes:
        path: Media file (absolute).
        caption: Text description.
        start: Segment start (s).
        end: Segment end (s), or None for the end of the file.
        category: Optional class label.
        key: Stable identifier (used as cache key).
        extra: Other manifest columns.
    """

    path: Path
    caption: str
    start: float = 0.0
    end: float | None = None
    category: str | None = None
    key: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def sidecar_json(self) -> Path:
        return self.path.with_suffix(".json")

    @property
    def sidecar_wav(self) -> Path:
        return self.path.with_suffix(".wav")

    def metadata(self) -> dict[str, Any]:
        """The clip's JSON sidecar (a synthetic clip's caption, category, scene, events, ...): {} when there is
        none, or it is not a JSON object."""
        return read_sidecar_json(self.sidecar_json)

    def events(self) -> list[dict[str, Any]]:
        """Ground-truth events of a synthetic clip (times relative to ``start``), [] when there is none."""
        events = self.metadata().get("events", [])
        if not isinstance(events, list):
            return []
        end = self.end if self.end is not None else float("inf")
        return [
            {**e, "time": float(e["time"]) - self.start}
            for e in events
            if isinstance(e, dict) and "time" in e and self.start <= float(e["time"]) < end
        ]


def read_sidecar_json(path: Path) -> dict[str, Any]:
    """A clip's JSON sidecar as a dict: {} when the file is missing, not valid JSON, or not a JSON object."""
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _number(value: str, what: str, where: str) -> float | None:
    value = (value or "").strip()
    if value == "":
        return None
    try:
        x = float(value)
    except ValueError:
        raise DataError(f"{where}: {what} must be a number of seconds, got {value!r}") from None
    if not np.isfinite(x) or x < 0:
        raise DataError(f"{where}: {what} must be a finite number >= 0, got {value!r}")
    return x


def _unique_keys(records: list[ClipRecord]) -> list[ClipRecord]:
    seen: dict[str, int] = {}
    out = []
    for r in records:
        base = r.path.stem if r.start == 0 else f"{r.path.stem}@{r.start:.3f}"
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(
            ClipRecord(
                path=r.path,
                caption=r.caption,
                start=r.start,
                end=r.end,
                category=r.category,
                key=base if n == 0 else f"{base}#{n}",
                extra=r.extra,
            )
        )
    return out


def read_manifest(path: str | os.PathLike, *, check_files: bool = True) -> list[ClipRecord]:
    """Read a CSV manifest (see the module docstring).

    Raises:
        DataError: missing file or columns, bad numbers, end <= start, or (``check_files``) missing media.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"manifest {p} does not exist")
    with open(p, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise DataError(
                f"manifest {p} lacks the column(s) {missing}; the header must include "
                f"{', '.join(REQUIRED_COLUMNS)} (found {header or 'no header'})"
            )
        records, absent = [], []
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "") for k, v in row.items()}
            where = f"{p}:{line}"
            if not row["path"].strip():
                raise DataError(f"{where}: empty path")
            media = Path(row["path"].strip()).expanduser()
            media = media if media.is_absolute() else (p.parent / media)
            start = _number(row["start"], "start", where) or 0.0
            end = _number(row["end"], "end", where)
            if end is not None and end <= start:
                raise DataError(f"{where}: end ({end}) must be after start ({start})")
            if check_files and not media.is_file():
                absent.append(str(media))
            extra = {k: v for k, v in row.items() if k not in (*REQUIRED_COLUMNS, "category")}
            records.append(
                ClipRecord(
                    path=media.resolve() if media.exists() else media,
                    caption=row["caption"].strip(),
                    start=start,
                    end=end,
                    category=(row.get("category") or "").strip() or None,
                    extra=extra,
                )
            )
    if absent:
        more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
        raise DataError(
            f"manifest {p}: {len(absent)} media file(s) do not exist: {', '.join(absent[:5])}{more}"
        )
    if not records:
        raise DataError(f"manifest {p} lists no clip")
    return _unique_keys(records)


def scan_folder(folder: str | os.PathLike) -> list[ClipRecord]:
    """Records of every video under ``folder`` (sorted), captions from sidecars or file names."""
    root = Path(folder)
    records = []
    for v in sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()):
        caption, category = v.stem.replace("_", " ").replace("-", " "), None
        js, txt = v.with_suffix(".json"), v.with_suffix(".txt")
        if js.is_file():
            meta = read_sidecar_json(js)
            caption, category = meta.get("caption", caption), meta.get("category")
        elif txt.is_file():
            caption = txt.read_text(encoding="utf-8").strip() or caption
        records.append(ClipRecord(path=v.resolve(), caption=caption, category=category))
    if not records:
        raise DataError(f"no video ({', '.join(VIDEO_EXTENSIONS)}) found under {root}")
    return _unique_keys(records)


def load_records(source: str | os.PathLike | Sequence[ClipRecord]) -> list[ClipRecord]:
    """Records from a manifest CSV, a folder (its ``manifest.csv`` if present, else a scan) or a list."""
    if not isinstance(source, (str, os.PathLike)):
        return list(source)
    p = Path(source).expanduser()
    if p.is_file():
        if p.suffix.lower() != ".csv":
            raise DataError(
                f"{p} is not a CSV manifest; pass a .csv with columns {', '.join(REQUIRED_COLUMNS)} "
                "or a folder of videos"
            )
        return read_manifest(p)
    if p.is_dir():
        return read_manifest(p / "manifest.csv") if (p / "manifest.csv").is_file() else scan_folder(p)
    raise DataError(f"dataset source {p} does not exist (expected a manifest .csv or a folder of videos)")
