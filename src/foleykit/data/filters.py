"""Training-data filters from the seeds.

- AV-Align >= 0.2 (STA-V2A sec. IV-A: drop audio-visually misaligned clips, e.g. static images with
  sound; VTA-LDM sec. 5.5 "score > 0.2"), with the metric of ``foleykit.evaluation.metrics.av_align``.
- CLAP text-audio score >= 0.3 (VTA-LDM sec. 5.5) when CLAP weights are configured (a local folder:
  ``foleykit.evaluation.embedders.clap.ClapEmbedder(path=...)``); skipped with a clear message otherwise.
- Caption keyword filters: STA-V2A removes videos whose captions mention human speech.

``filter_records`` scores a dataset and returns one ``FilterResult`` per clip (kept or not, scores,
reasons); ``write_filtered_manifest`` writes the kept clips as a manifest plus a report CSV.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foleykit.data.manifest import ClipRecord
from foleykit.errors import DataError

#: Words that mark human speech in a caption (STA-V2A filters speech videos by caption).
SPEECH_KEYWORDS = (
    "speech",
    "speak",
    "speaks",
    "speaking",
    "speaker",
    "talk",
    "talks",
    "talking",
    "conversation",
    "narration",
    "narrator",
    "narrates",
    "voice",
    "voices",
    "voiceover",
    "dialogue",
    "interview",
    "lecture",
    "podcast",
    "announcer",
    "commentary",
    "commentator",
    "whisper",
    "whispering",
    "sing",
    "sings",
    "singing",
    "vocal",
)
AV_ALIGN_MIN = 0.2
CLAP_MIN = 0.3


def keyword_filter(caption: str, keywords: Sequence[str] = SPEECH_KEYWORDS) -> str | None:
    """The first keyword found in ``caption`` as a whole word (case-insensitive), or None (keep it)."""
    for k in keywords:
        if re.search(rf"(?<![A-Za-z]){re.escape(k.lower())}(?![A-Za-z])", caption.lower()):
            return k
    return None


@dataclass
class FilterResult:
    """Outcome for one clip: ``keep``, the scores computed and the reasons it was dropped."""

    record: ClipRecord
    keep: bool = True
    scores: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


def av_align_of(record: ClipRecord, *, prefer_wav: bool = True) -> float:
    """AV-Align (reference protocol) of a clip's own audio against its video segment."""
    from foleykit.evaluation.metrics.av_align import AUDIO_SAMPLE_RATE, av_align
    from foleykit.media import read_audio, read_video

    dur = None if record.end is None else record.end - record.start
    src = record.sidecar_wav if prefer_wav and record.sidecar_wav.is_file() else record.path
    wav = read_audio(src, sample_rate=AUDIO_SAMPLE_RATE, start=record.start, duration=dur)
    clip = read_video(record.path, start=record.start, duration=dur)
    return float(av_align(wav, AUDIO_SAMPLE_RATE, clip.frames, clip.fps))


def load_clap(path: str | os.PathLike) -> Any:
    """A CLAP embedder from a local folder (``WeightsNotFoundError`` says what is expected)."""
    from foleykit.evaluation.embedders.clap import ClapEmbedder

    return ClapEmbedder(path=path)


def clap_of(record: ClipRecord, embedder: Any, *, prefer_wav: bool = True) -> float:
    """CLAP text-audio cosine of a clip's caption and audio."""
    from foleykit.evaluation.metrics.clap_score import clap_text_audio
    from foleykit.media import read_audio

    dur = None if record.end is None else record.end - record.start
    src = record.sidecar_wav if prefer_wav and record.sidecar_wav.is_file() else record.path
    wav = read_audio(src, sample_rate=int(embedder.sample_rate), start=record.start, duration=dur)
    return float(clap_text_audio(embedder, [record.caption], [wav], int(embedder.sample_rate))[0])


def filter_records(
    records: Sequence[ClipRecord],
    *,
    av_align_min: float | None = AV_ALIGN_MIN,
    clap_min: float | None = None,
    clap: Any = None,
    keywords: Sequence[str] | None = SPEECH_KEYWORDS,
    progress: bool = True,
    av_align_fn: Any = None,
    clap_fn: Any = None,
) -> list[FilterResult]:
    """Score and filter clips. Cheap tests run first: a clip dropped by its caption is not decoded.

    Args:
        records: The clips.
        av_align_min: Keep clips with AV-Align >= this (None: no AV-Align filter).
        clap_min: Keep clips with CLAP text-audio >= this (needs ``clap``; None: no CLAP filter).
        clap: A CLAP embedder (``load_clap(folder)``) or None.
        keywords: Caption words that drop a clip (None or empty: no caption filter).
        progress: tqdm progress bar.
        av_align_fn / clap_fn: Score functions (record -> float), replaceable for tests.

    Returns:
        One FilterResult per record, in order.
    """
    from tqdm.auto import tqdm

    if clap_min is not None and clap is None and clap_fn is None:
        raise DataError(
            "the CLAP filter needs CLAP weights: pass --clap-model DIR (a local CLAP folder), or drop "
            "--clap-min; foleykit never downloads weights"
        )
    av_fn = av_align_fn or av_align_of
    cl_fn = clap_fn or (lambda r: clap_of(r, clap))
    out = []
    for r in tqdm(records, desc="filter", unit="clip", disable=not progress):
        res = FilterResult(record=r)
        word = keyword_filter(r.caption, keywords) if keywords else None
        if word is not None:
            res.keep = False
            res.reasons.append(f"caption mentions {word!r}")
        if res.keep and av_align_min is not None:
            res.scores["av_align"] = s = float(av_fn(r))
            if s < av_align_min:
                res.keep = False
                res.reasons.append(f"av_align {s:.3f} < {av_align_min}")
        if res.keep and clap_min is not None:
            res.scores["clap"] = s = float(cl_fn(r))
            if s < clap_min:
                res.keep = False
                res.reasons.append(f"clap {s:.3f} < {clap_min}")
        out.append(res)
    return out


def write_filtered_manifest(results: Sequence[FilterResult], output: str | os.PathLike) -> tuple[Path, Path]:
    """Write the kept clips to ``output`` (a manifest CSV) and every clip's scores to ``<output>.report.csv``.

    Paths are written absolute so the manifest works from any folder.
    """
    from foleykit.utils.io import atomic_write_text

    out = Path(output)
    if out.suffix.lower() != ".csv":
        raise DataError(f"--output must be a .csv file, got {out}")
    kept, report = io.StringIO(), io.StringIO()
    wk, wr = csv.writer(kept, lineterminator="\n"), csv.writer(report, lineterminator="\n")
    wk.writerow(("path", "caption", "start", "end", "category"))
    wr.writerow(("path", "start", "keep", "av_align", "clap", "reasons"))
    for res in results:
        r = res.record
        if res.keep:
            wk.writerow((str(r.path), r.caption, r.start, "" if r.end is None else r.end, r.category or ""))
        wr.writerow(
            (
                str(r.path),
                r.start,
                int(res.keep),
                _fmt(res.scores.get("av_align")),
                _fmt(res.scores.get("clap")),
                "; ".join(res.reasons),
            )
        )
    report_path = out.with_name(out.stem + ".report.csv")
    return atomic_write_text(out, kept.getvalue()), atomic_write_text(report_path, report.getvalue())


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"
