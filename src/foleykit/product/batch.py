"""Batch generation: a folder of videos or a CSV list (path, prompt, ...), one failure never stops the rest,
a summary at the end, and sharding of the list across ``torchrun`` / ``accelerate launch`` processes."""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foleykit.errors import ConfigError, DataError, FoleykitError
from foleykit.product.outputs import AUDIO_SUFFIXES, INPUT_VIDEO_SUFFIXES, VIDEO_SUFFIXES

#: CSV columns besides ``path``: option name -> parser.
CSV_COLUMNS: dict[str, Callable[[str], Any]] = {
    "prompt": str,
    "negative_prompt": str,
    "audio_prompt": str,
    "control": str,
    "control_from_audio": str,
    "control_scale": float,
    "follow_envelope": float,
    "steps": int,
    "guidance": float,
    "seed": int,
    "start": float,
    "duration": float,
    "output": str,
}
#: Columns holding file names (relative to the CSV's folder).
_PATH_COLUMNS = ("audio_prompt", "control", "control_from_audio")


@dataclass
class BatchItem:
    """One video of a batch: its output and per-video option overrides (CSV columns)."""

    video: Path
    output: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    line: int | None = None


@dataclass
class BatchSummary:
    """What a batch run did."""

    done: list[tuple[BatchItem, Path]] = field(default_factory=list)
    failed: list[tuple[BatchItem, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def text(self, rank: int = 0, world: int = 1) -> str:
        who = f" (process {rank + 1} of {world})" if world > 1 else ""
        lines = [f"batch{who}: {len(self.done)} generated, {len(self.failed)} failed, {self.seconds:.1f} s"]
        lines += [f"  FAILED {item.video}: {msg}" for item, msg in self.failed]
        return "\n".join(lines)


def is_batch_input(path: str | os.PathLike) -> bool:
    """A folder or a ``.csv`` list means a batch."""
    p = Path(path)
    return p.is_dir() or p.suffix.lower() == ".csv"


def _output_for(video: Path, out_dir: Path, fmt: str) -> Path:
    return out_dir / f"{video.stem}.{fmt}"


def collect_items(
    source: str | os.PathLike, out_dir: str | os.PathLike, *, fmt: str = "mp4"
) -> list[BatchItem]:
    """The work list of a batch.

    Args:
        source: A folder (every video file directly inside it, sorted by name) or a CSV file with a header and a
            ``path`` column (relative paths start at the CSV's folder) and optional columns
            ``prompt, negative_prompt, audio_prompt, control, control_from_audio, control_scale, follow_envelope,
            steps, guidance, seed, start, duration, output``; empty cells keep the command-line value.
        out_dir: Output folder (outputs are ``<video stem>.<fmt>`` unless the CSV names them).
        fmt: Output suffix: mp4, mov, mkv, wav or flac.

    Raises:
        ConfigError / DataError: unknown format, empty folder, unreadable CSV, bad cells (with their line),
        two videos that would write the same output.
    """
    fmt = fmt.lower().lstrip(".")
    if f".{fmt}" not in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
        raise ConfigError(f"--format {fmt!r}: use one of mp4, mov, mkv, wav, flac")
    src, out_dir = Path(source), Path(out_dir)
    if out_dir.suffix.lower() in VIDEO_SUFFIXES + AUDIO_SUFFIXES and not out_dir.is_dir():
        raise ConfigError(
            f"with a folder or CSV of videos, -o names an output folder, not a file ({out_dir})"
        )
    if src.is_dir():
        videos = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in INPUT_VIDEO_SUFFIXES)
        if not videos:
            raise DataError(f"{src}: no video files ({', '.join(INPUT_VIDEO_SUFFIXES)}) in this folder")
        items = [BatchItem(v, _output_for(v, out_dir, fmt)) for v in videos]
    elif src.suffix.lower() == ".csv":
        items = _read_csv(src, out_dir, fmt)
    else:
        raise ConfigError(f"{src}: a batch is a folder of videos or a .csv list")
    seen: dict[Path, BatchItem] = {}
    for item in items:
        key = item.output.resolve()
        if key in seen:
            raise DataError(
                f"{item.video} and {seen[key].video} would both write {item.output}; give the CSV an "
                "'output' column or rename one of them"
            )
        seen[key] = item
    return items


def _read_csv(path: Path, out_dir: Path, fmt: str) -> list[BatchItem]:
    if not path.is_file():
        raise DataError(f"{path}: batch list not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the batch list ({e})") from None
    rows = list(csv.DictReader(text.splitlines()))
    header = [h.strip() for h in (csv.DictReader(text.splitlines()).fieldnames or [])]
    col = "path" if "path" in header else "video" if "video" in header else None
    if col is None:
        raise DataError(f"{path}: the header needs a 'path' column (then optional {', '.join(CSV_COLUMNS)})")
    unknown = [h for h in header if h not in CSV_COLUMNS and h != col]
    if unknown:
        raise DataError(
            f"{path}: unknown column(s) {', '.join(unknown)}; allowed: path, {', '.join(CSV_COLUMNS)}"
        )
    items = []
    for i, row in enumerate(rows, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not row.get(col):
            if any(row.values()):
                raise DataError(f"{path}: line {i}: the '{col}' cell is empty")
            continue
        video = _relative(path, row[col])
        overrides: dict[str, Any] = {}
        for key, parse in CSV_COLUMNS.items():
            cell = row.get(key, "")
            if cell == "" or key == "output":
                continue
            try:
                overrides[key] = parse(cell)
            except ValueError:
                raise DataError(
                    f"{path}: line {i}, column {key}: {cell!r} is not a valid "
                    f"{'whole number' if parse is int else 'number'}"
                ) from None
            if key in _PATH_COLUMNS:
                overrides[key] = str(_relative(path, cell))
        out = Path(row["output"]) if row.get("output") else _output_for(video, out_dir, fmt)
        if not out.is_absolute() and row.get("output"):
            out = out_dir / out
        items.append(BatchItem(video, out, overrides, line=i))
    if not items:
        raise DataError(f"{path}: the batch list has no rows")
    return items


def _relative(csv_path: Path, cell: str) -> Path:
    p = Path(cell).expanduser()
    return p if p.is_absolute() else csv_path.parent / p


def run_batch(
    pipe: Any,
    items: list[BatchItem],
    opts: Any,
    *,
    model_info: dict[str, Any] | None = None,
    device: str | None = None,
    log: Callable[[str], None] = print,
    show_progress: bool | None = None,
) -> BatchSummary:
    """Generate every item; a failing item is reported and the others continue.

    Args:
        pipe: The pipeline.
        items: Work list (this process's shard).
        opts: Base :class:`~foleykit.product.generate.GenerateOptions`; an item's overrides replace its fields.
        model_info, device: For the sidecars.
        log: Where progress lines and failures go.
        show_progress: tqdm bar over the items (None: only on a terminal).
    """
    from tqdm.auto import tqdm

    from foleykit.product.generate import generate_audio
    from foleykit.product.outputs import write_outputs
    from foleykit.product.runtime import configure_threads

    summary = BatchSummary()
    t0 = time.perf_counter()
    bar = tqdm(
        items, desc="videos", unit="video", disable=None if show_progress is None else not show_progress
    )
    for item in bar:
        try:
            item_opts = dataclasses.replace(opts, **item.overrides)
            configure_threads()  # the machine's load changes during a long batch
            result = generate_audio(pipe, item.video, item_opts)
            written = write_outputs(
                result, item.video, item.output, item_opts, model_info=model_info, device=device
            )
            summary.done.append((item, written["output"]))
            log(f"{item.output}: {result.end - result.start:.2f} s, seed {result.seed}")
        except FoleykitError as e:
            summary.failed.append((item, str(e)))
            log(f"foleykit: error: {item.video}: {e}")
        except (
            RuntimeError,
            ValueError,
            OSError,
        ) as e:  # an unexpected failure on one file must not stop the rest
            summary.failed.append((item, f"{type(e).__name__}: {e}"))
            log(f"foleykit: error: {item.video}: unexpected {type(e).__name__}: {e}")
    summary.seconds = time.perf_counter() - t0
    return summary


def skipped_subfolders(source: str | os.PathLike) -> list[Path]:
    """Sub-folders of a batch folder that hold videos: a folder batch takes only the videos directly inside
    it, so the command says which folders it did not search (sorted; empty for a CSV list)."""
    src = Path(source)
    if not src.is_dir():
        return []
    return sorted(
        d
        for d in src.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and any(p.is_file() and p.suffix.lower() in INPUT_VIDEO_SUFFIXES for p in d.rglob("*"))
    )
