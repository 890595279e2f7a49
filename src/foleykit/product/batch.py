"""Batch generation: a folder of videos or a CSV list (path, prompt, ...), one failure never stops the rest,
a summary at the end, and sharding of the list across ``torchrun`` / ``accelerate launch`` processes.

Every item is checked before the model loads (:func:`check_items`): a bad CSV cell, a missing video or
reference sound, an unreadable control file... fail that row only (named by its CSV line) and the others run.
"""

from __future__ import annotations

import csv
import dataclasses
import math
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
    "expansion": float,
    "init_audio": str,
    "init_strength": float,
    "steps": int,
    "guidance": float,
    "seed": int,
    "start": float,
    "duration": float,
    "output": str,
}
#: Allowed values of the numeric columns: (low, high, low is exclusive), and how to say it.
_CELL_RANGES: dict[str, tuple[float, float, bool, str]] = {
    "control_scale": (0.0, math.inf, False, "a number >= 0"),
    "follow_envelope": (0.0, 1.0, False, "a number from 0 to 1"),
    "expansion": (1.0, 10.0, False, "a number from 1 to 10"),
    "init_strength": (0.0, 1.0, True, "a number in (0, 1]"),
    "steps": (1, math.inf, False, "a whole number >= 1"),
    "guidance": (0.0, math.inf, False, "a number >= 0"),
    "seed": (0, 2**63 - 1, False, "a whole number from 0 to 2^63 - 1"),
    "start": (0.0, math.inf, False, "a number of seconds >= 0"),
    "duration": (0.0, math.inf, True, "a number of seconds > 0"),
}
#: Columns holding file names (relative to the CSV's folder).
_PATH_COLUMNS = ("audio_prompt", "control", "control_from_audio", "init_audio")


@dataclass
class BatchItem:
    """One video of a batch: its output and per-video option overrides (CSV columns)."""

    video: Path
    output: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    line: int | None = None
    #: The CSV list the item comes from (None for a folder).
    source: Path | None = None
    #: Why the item cannot run (a bad cell, a missing file...), found before the model loads.
    error: str | None = None
    #: How its video output will be written (:func:`foleykit.media.plan_mux`), once checked.
    plan: Any = None

    @property
    def label(self) -> str:
        """How messages name the item: ``list.csv line 3 (clip.mp4)`` for a CSV row, else the video."""
        if self.source is not None and self.line is not None:
            named = f" ({self.video.name})" if self.video != self.source else ""
            return f"{self.source.name} line {self.line}{named}"
        return str(self.video)

    def failure(self, message: str) -> str:
        """``message`` without a leading copy of the video path (the label names it already)."""
        head = f"{self.video}: "
        return message.removeprefix(head)


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
        lines += [f"  FAILED {item.label}: {msg}" for item, msg in self.failed]
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
            expansion, init_audio, init_strength, steps, guidance, seed, start, duration, output``; empty cells
            keep the command-line value.
        out_dir: Output folder (outputs are ``<video stem>.<fmt>`` unless the CSV names them).
        fmt: Output suffix: mp4, mov, mkv, webm, wav or flac.

    Raises:
        ConfigError / DataError: unknown format, empty folder, unreadable CSV, unknown columns. A bad cell, or
        an output another item already writes, fails only that item (``BatchItem.error``).
    """
    fmt = fmt.lower().lstrip(".")
    if f".{fmt}" not in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
        raise ConfigError(f"--format {fmt!r}: use one of mp4, mov, mkv, webm, wav, flac")
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
    for item in items:  # a later item writing the same output fails alone
        if item.error is not None:
            continue
        key = item.output.resolve()
        if key in seen:
            first = seen[key]
            item.error = (
                f"it would write {item.output} like {first.label}; give the CSV an 'output' column or rename "
                "one of the videos"
            )
            continue
        seen[key] = item
    return items


def _read_csv(path: Path, out_dir: Path, fmt: str) -> list[BatchItem]:
    if not path.is_file():
        raise DataError(f"{path}: batch list not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the batch list ({e})") from None
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
    for line, row in _rows_with_lines(text):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not row.get(col):
            if any(row.values()):
                items.append(
                    BatchItem(
                        path,
                        out_dir,
                        line=line,
                        source=path,
                        error=f"the '{col}' cell is empty",
                    )
                )
            continue
        video = _relative(path, row[col])
        overrides: dict[str, Any] = {}
        errors = []
        for key, parse in CSV_COLUMNS.items():
            cell = row.get(key, "")
            if cell == "" or key == "output":
                continue
            value, problem = _parse_cell(key, cell, parse)
            if problem:
                errors.append(problem)
                continue
            overrides[key] = str(_relative(path, cell)) if key in _PATH_COLUMNS else value
        out = Path(row["output"]) if row.get("output") else _output_for(video, out_dir, fmt)
        if not out.is_absolute() and row.get("output"):
            out = out_dir / out
        items.append(
            BatchItem(video, out, overrides, line=line, source=path, error="; ".join(errors) or None)
        )
    if not items:
        raise DataError(f"{path}: the batch list has no rows")
    return items


def _rows_with_lines(text: str) -> list[tuple[int, dict[str, str]]]:
    """CSV rows (after the header) with their line in the file (the last line of a row whose quoted cell
    spans lines; blank lines are skipped but counted)."""
    reader = csv.DictReader(text.splitlines())
    return [(reader.line_num, row) for row in reader]


def _parse_cell(key: str, cell: str, parse: Callable[[str], Any]) -> tuple[Any, str | None]:
    """``(value, None)`` or ``(None, "column KEY: ... ")`` for a cell of a numeric column out of range."""
    limits = _CELL_RANGES.get(key)
    try:
        value = parse(cell)
    except ValueError:
        return None, f"column {key}: {cell!r} is not {limits[3] if limits else 'valid'}"
    if limits is not None:
        lo, hi, open_low, what = limits
        if not math.isfinite(value) or value < lo or value > hi or (open_low and value == lo):
            return None, f"column {key}: {cell!r} is not {what}"
    return value, None


def check_items(items: list[BatchItem], opts: Any, *, kinds: dict[str, str] | None = None) -> list[BatchItem]:
    """Check every item's inputs before the model loads (:func:`foleykit.product.checks.check_inputs`):
    a problem sets ``item.error`` (that item fails, the others run); a video output's plan is kept.

    Returns:
        The items that can run.
    """
    from foleykit.product.checks import check_inputs

    ok = []
    for item in items:
        if item.error is None:
            try:
                checked = check_inputs(
                    item.video, item.output, dataclasses.replace(opts, **item.overrides), kinds=kinds
                )
                item.plan = checked.plan
            except FoleykitError as e:
                item.error = item.failure(str(e))
        if item.error is None:
            ok.append(item)
    return ok


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
    """Generate every item; a failing item is reported and the others continue. Items whose
    :attr:`BatchItem.error` is set (found by :func:`check_items`) are reported as failed without running.

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
    started = time.time()
    for item in bar:
        if item.error is not None:
            summary.failed.append((item, item.error))
            log(f"foleykit: error: {item.label}: {item.error}")
            continue
        try:
            item_opts = dataclasses.replace(opts, **item.overrides)
            configure_threads()  # the machine's load changes during a long batch
            result = generate_audio(pipe, item.video, item_opts)
            written = write_outputs(
                result,
                item.video,
                item.output,
                item_opts,
                model_info=model_info,
                device=device,
                video_plan=item.plan,
                extra_inputs={"batch_list": item.source} if item.source is not None else None,
                started=started,
            )
            summary.done.append((item, written["output"]))
            log(f"{item.output}: {result.end - result.start:.2f} s, seed {result.seed}")
        except FoleykitError as e:
            summary.failed.append((item, item.failure(str(e))))
            log(f"foleykit: error: {item.label}: {item.failure(str(e))}")
        except (
            RuntimeError,
            ValueError,
            OSError,
        ) as e:  # an unexpected failure on one file must not stop the rest
            summary.failed.append((item, f"{type(e).__name__}: {e}"))
            log(f"foleykit: error: {item.label}: unexpected {type(e).__name__}: {e}")
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
