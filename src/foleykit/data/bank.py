"""Sound banks: folders of sound files whose sub-folder names are categories.

A bank is any folder such as::

    footsteps/grass/grass1.ogg
    footsteps/gravel/gravel1.ogg
    break/glass/breakglass01.ogg

The category of a file is its parent folder path relative to the bank root (``footsteps/grass``); files
placed directly in the root have no category and are ignored. A ``bank.json`` manifest (written by
``foleykit data prepare-bank``, optional for user banks) adds licence, source and pre-computed analysis
(duration, onset, peak, near-duplicate group) for every file.

``SoundBank`` loads sounds as mono float32 at one sample rate (cached), and finds each sound's attack
(onset) so that it can be placed exactly at a visual contact time. ``split_bank`` assigns source files to
train / validation / test so that no file (nor a near-duplicate of it) is ever shared between splits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import DataError

log = logging.getLogger(__name__)

#: Extensions indexed in a bank folder (decoded with soundfile / libsndfile).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")
#: Name of the optional manifest at the root of a bank.
MANIFEST_NAME = "bank.json"
#: Split names, in order.
SPLITS = ("train", "validation", "test")

#: Attack detection: RMS frame / hop in seconds and the fraction of the peak RMS that marks the onset.
ONSET_FRAME_S = 0.004
ONSET_HOP_S = 0.001
ONSET_THRESHOLD = 0.25


@dataclass(frozen=True)
class SoundFile:
    """One file of a bank.

    Attributes:
        path: POSIX path relative to the bank root (``footsteps/grass/grass1.ogg``).
        category: Parent folder path (``footsteps/grass``).
        duration: Duration in seconds.
        sample_rate: Native sample rate of the file.
        channels: Native channel count.
        license: SPDX-like licence name when known (from ``bank.json``), else None.
        source: Where the file came from (e.g. its path inside a package), when known.
        group: Near-duplicate group (files of one group always fall in the same split); defaults to path.
        caption: What the sound is, in words, when the bank says (e.g. "a dog barks" for a stamp sound).
        stamp: The Tux Paint stamp whose picture shows this sound's source (``animals/mammals/dogs/dog``),
            when there is one.
    """

    path: str
    category: str
    duration: float
    sample_rate: int
    channels: int
    license: str | None = None
    source: str | None = None
    group: str | None = None
    caption: str | None = None
    stamp: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SoundAnalysis:
    """Attack analysis of one sound at the bank's sample rate.

    Attributes:
        onset: Attack time (s): the first sample reaching ``ONSET_THRESHOLD`` x the peak RMS, searched in the
            first RMS frame (4 ms, centred) that reaches it.
        peak: Time (s) of the RMS maximum.
        peak_amplitude: max |x| of the mono signal (used for peak normalisation).
        rms: RMS over the whole sound.
    """

    onset: float
    peak: float
    peak_amplitude: float
    rms: float


def analyse_sound(wav: np.ndarray, sample_rate: int, *, threshold: float = ONSET_THRESHOLD) -> SoundAnalysis:
    """Find the attack (onset) and the peak of a mono sound.

    The envelope is a short-frame RMS (4 ms frames, 1 ms hop, centred). The first frame whose RMS reaches
    ``threshold`` x the maximum RMS locates the attack; the onset is the first sample of that frame's window
    whose magnitude reaches the same level. Placing a sound so that ``onset`` falls at a contact time puts
    its audible attack on that time (bank sounds carry a little silence or pre-roll before the attack).

    Args:
        wav: Mono audio ``(T,)`` float.
        sample_rate: Its sample rate in Hz.
        threshold: Fraction of the peak RMS that marks the onset.

    Returns:
        The analysis; an all-silent sound has onset = peak = 0.
    """
    import librosa

    x = np.asarray(wav, dtype=np.float32)
    if x.ndim != 1:
        raise DataError(f"analyse_sound expects mono (T,), got shape {x.shape}")
    if x.size == 0 or not np.any(x):
        return SoundAnalysis(onset=0.0, peak=0.0, peak_amplitude=0.0, rms=0.0)
    frame = max(4, round(ONSET_FRAME_S * sample_rate))
    hop = max(1, round(ONSET_HOP_S * sample_rate))
    env = librosa.feature.rms(y=x, frame_length=frame, hop_length=hop, center=True)[0]
    k_peak = int(np.argmax(env))
    k_on = int(np.argmax(env >= threshold * env[k_peak]))
    # Refine to a sample: the first sample of that frame's window reaching the same level in amplitude.
    lo, hi = max(0, k_on * hop - frame // 2), min(x.size, k_on * hop + frame // 2 + hop)
    above = np.flatnonzero(np.abs(x[lo:hi]) >= threshold * env[k_peak])
    s_on = lo + int(above[0]) if above.size else k_on * hop
    return SoundAnalysis(
        onset=s_on / sample_rate,
        peak=k_peak * hop / sample_rate,
        peak_amplitude=float(np.max(np.abs(x))),
        rms=float(np.sqrt(np.mean(x.astype(np.float64) ** 2))),
    )


def _read_mono(path: Path) -> tuple[np.ndarray, int]:
    """Decode a sound file to mono float32 at its native rate."""
    import soundfile as sf

    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile raises RuntimeError / LibsndfileError
        raise DataError(f"cannot decode sound file {path}: {e}") from e
    return x.mean(axis=1).astype(np.float32), int(sr)


class SoundBank:
    """Index of a sound-bank folder, with cached decoding and attack analysis.

    Args:
        root: The bank folder (categories are sub-folder paths).
        sample_rate: Rate at which ``load`` returns audio (default: ``SequenceConfig().sample_rate``).
        cache_size: Number of decoded sounds kept in memory.

    Raises:
        DataError: the folder does not exist, holds no categorised sound file, or its ``bank.json`` is
            malformed or lists missing files.
    """

    def __init__(self, root: str | os.PathLike, *, sample_rate: int = 16000, cache_size: int = 512) -> None:
        self.root = Path(root).expanduser()
        self.sample_rate = int(sample_rate)
        if not self.root.is_dir():
            raise DataError(
                f"sound bank folder {self.root} does not exist; create it with `foleykit data prepare-bank` "
                "or point to a folder of sound files organised as <category>/<file>"
            )
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = int(cache_size)
        self._analysis: dict[str, SoundAnalysis] = {}
        self.manifest: dict[str, Any] = {}
        manifest = self.root / MANIFEST_NAME
        files = self._from_manifest(manifest) if manifest.is_file() else self._scan()
        if not files:
            raise DataError(
                f"no categorised sound files ({', '.join(AUDIO_EXTENSIONS)}) under {self.root}; "
                "a bank needs sub-folders, e.g. footsteps/grass/step1.wav"
            )
        self.files: list[SoundFile] = sorted(files, key=lambda f: f.path)
        self._by_path = {f.path: f for f in self.files}

    # --- indexing ----------------------------------------------------------------------------------
    def _from_manifest(self, manifest: Path) -> list[SoundFile]:
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            entries = data["files"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(
                f"{manifest} is not a valid bank manifest ({e}); delete it or re-run prepare-bank"
            ) from e
        self.manifest = {k: v for k, v in data.items() if k != "files"}
        files = []
        for e in entries:
            try:
                f = SoundFile(
                    path=str(e["path"]),
                    category=str(e["category"]),
                    duration=float(e["duration"]),
                    sample_rate=int(e["sample_rate"]),
                    channels=int(e["channels"]),
                    license=e.get("license"),
                    source=e.get("source"),
                    group=e.get("group"),
                    caption=e.get("caption"),
                    stamp=e.get("stamp"),
                )
            except (KeyError, TypeError, ValueError) as err:
                raise DataError(f"{manifest}: malformed entry {e!r} ({err})") from err
            if not (self.root / f.path).is_file():
                raise DataError(
                    f"{manifest} lists {f.path} but the file is missing; re-run prepare-bank --force"
                )
            files.append(f)
            if "onset" in e and "peak" in e:
                self._analysis[f.path] = SoundAnalysis(
                    onset=float(e["onset"]),
                    peak=float(e["peak"]),
                    peak_amplitude=float(e.get("peak_amplitude", 1.0)),
                    rms=float(e.get("rms", 0.0)),
                )
        if self.manifest.get("analysis_sample_rate") not in (None, self.sample_rate):
            self._analysis.clear()  # analysis was made at another rate: recompute lazily
        return files

    def _scan(self) -> list[SoundFile]:
        import soundfile as sf

        files = []
        for p in sorted(self.root.rglob("*")):
            if not p.is_file() or p.suffix.lower() not in AUDIO_EXTENSIONS or p.name.startswith("."):
                continue
            rel = p.relative_to(self.root).as_posix()
            category = p.parent.relative_to(self.root).as_posix()
            if category == ".":
                log.warning("ignoring %s: files at the bank root have no category", rel)
                continue
            try:
                info = sf.info(str(p))
            except (RuntimeError, OSError) as e:  # soundfile.LibsndfileError is a RuntimeError
                log.warning("ignoring %s: not a readable sound file (%s)", rel, e)
                continue
            if info.frames <= 0:
                log.warning("ignoring %s: empty sound", rel)
                continue
            files.append(
                SoundFile(
                    path=rel,
                    category=category,
                    duration=info.frames / info.samplerate,
                    sample_rate=int(info.samplerate),
                    channels=int(info.channels),
                )
            )
        return files

    # --- queries ---------------------------------------------------------------------------------------
    @property
    def categories(self) -> list[str]:
        """Sorted leaf categories (folder paths holding at least one file)."""
        return sorted({f.category for f in self.files})

    def category_files(self, category: str) -> list[SoundFile]:
        """Files of a category; a prefix (``footsteps``) selects every sub-category below it."""
        c = category.strip("/")
        out = [f for f in self.files if f.category == c or f.category.startswith(c + "/")]
        if not out:
            raise DataError(
                f"category {category!r} has no file in bank {self.root}; categories: {self.categories}"
            )
        return out

    def file(self, path: str | SoundFile) -> SoundFile:
        """The indexed entry of a bank-relative path."""
        key = path.path if isinstance(path, SoundFile) else str(path)
        try:
            return self._by_path[key]
        except KeyError:
            raise DataError(f"{key!r} is not a file of bank {self.root}") from None

    def counts(self) -> dict[str, int]:
        """Number of files per leaf category."""
        out: dict[str, int] = {}
        for f in self.files:
            out[f.category] = out.get(f.category, 0) + 1
        return dict(sorted(out.items()))

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"SoundBank({str(self.root)!r}, {len(self.files)} files, {len(self.categories)} categories)"

    # --- audio ------------------------------------------------------------------------------------------
    def load(self, path: str | SoundFile, *, normalize: bool = False) -> np.ndarray:
        """Decode a sound as mono float32 ``(T,)`` at ``self.sample_rate`` (cached in memory).

        Args:
            path: Bank-relative path or SoundFile.
            normalize: Divide by the peak amplitude (max |x| = 1) when True.

        Returns:
            A read-only array (copy it before editing).
        """
        f = self.file(path)
        wav = self._cache.get(f.path)
        if wav is None:
            import librosa

            x, sr = _read_mono(self.root / f.path)
            if sr != self.sample_rate:
                x = librosa.resample(x, orig_sr=sr, target_sr=self.sample_rate).astype(np.float32)
            x.setflags(write=False)
            wav = x
            self._cache[f.path] = wav
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(f.path)
        if normalize:
            peak = self.analysis(f).peak_amplitude
            return wav / peak if peak > 0 else wav
        return wav

    def analysis(self, path: str | SoundFile) -> SoundAnalysis:
        """Attack analysis (onset, peak, peak amplitude) at the bank's sample rate (cached)."""
        f = self.file(path)
        a = self._analysis.get(f.path)
        if a is None:
            a = analyse_sound(self.load(f), self.sample_rate)
            self._analysis[f.path] = a
        return a

    def onset(self, path: str | SoundFile) -> float:
        """Offset (s) of the sound's attack from the start of its file."""
        return self.analysis(path).onset

    def fingerprint(self, path: str | SoundFile, *, rate: int = 4000, seconds: float = 1.5) -> np.ndarray:
        """Onset-aligned, unit-norm excerpt at a low rate (used to find near-duplicate files)."""
        import librosa

        f = self.file(path)
        x = self.load(f)
        start = max(0, round((self.onset(f) - 0.01) * self.sample_rate))
        seg = librosa.resample(
            x[start : start + round(seconds * self.sample_rate)], orig_sr=self.sample_rate, target_sr=rate
        )
        n = float(np.linalg.norm(seg))
        return (seg / n).astype(np.float32) if n > 0 else seg.astype(np.float32)

    def duplicate_groups(self, *, threshold: float = 0.95) -> dict[str, str]:
        """Map every file to a near-duplicate group id (the first path of its group).

        Groups come from ``bank.json`` when present. Otherwise files within one top-level category whose
        durations differ by < 25 % are compared: identical bytes, or a peak normalised cross-correlation
        of their onset-aligned excerpts (lags up to +-20 ms) >= ``threshold`` puts them in one group (some
        packages ship re-encoded copies of one recording under two names).
        """
        if all(f.group for f in self.files):
            return {f.path: str(f.group) for f in self.files}
        from scipy.signal import correlate

        parent = {f.path: f.path for f in self.files}

        def find(p: str) -> str:
            while parent[p] != p:
                parent[p] = parent[parent[p]]
                p = parent[p]
            return p

        def union(a: str, b: str) -> None:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)

        digests: dict[str, str] = {}
        for f in self.files:
            h = hashlib.sha1((self.root / f.path).read_bytes()).hexdigest()
            if h in digests:
                union(digests[h], f.path)
            else:
                digests[h] = f.path
        by_top: dict[str, list[SoundFile]] = {}
        for f in self.files:
            by_top.setdefault(f.category.split("/")[0], []).append(f)
        lag = 0.02 * 4000
        for members in by_top.values():
            prints = {f.path: self.fingerprint(f) for f in members}
            for i, a in enumerate(members):
                for b in members[i + 1 :]:
                    if find(a.path) == find(b.path):
                        continue
                    if max(a.duration, b.duration) > 1.25 * min(a.duration, b.duration):
                        continue
                    pa, pb = prints[a.path], prints[b.path]
                    if pa.size == 0 or pb.size == 0:
                        continue
                    c = correlate(pa, pb, mode="full", method="fft")
                    mid = pb.size - 1
                    window = c[max(0, int(mid - lag)) : int(mid + lag) + 1]
                    if window.size and float(window.max()) >= threshold:
                        union(a.path, b.path)
        return {p: find(p) for p in parent}

    def licenses(self) -> dict[str, int]:
        """Number of files per licence (``unknown`` when the bank does not say)."""
        out: dict[str, int] = {}
        for f in self.files:
            key = f.license or "unknown"
            out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))


# --- splits ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BankSplit:
    """Assignment of a bank's source files to train / validation / test.

    Attributes:
        seed: Seed of the assignment.
        fractions: (train, validation, test) fractions used.
        assignment: Bank-relative path -> split name.
        categories_by_file: Bank-relative path -> category (to query by category).
    """

    seed: int
    fractions: tuple[float, float, float]
    assignment: dict[str, str] = field(repr=False)
    categories_by_file: dict[str, str] = field(repr=False)

    def split_of(self, path: str) -> str:
        try:
            return self.assignment[path]
        except KeyError:
            raise DataError(f"{path!r} is not part of this bank split") from None

    def files(self, split: str, category: str | None = None) -> list[str]:
        """Sorted paths of a split; ``category`` (leaf or prefix) narrows it."""
        _check_split(split)
        out = []
        for p, s in self.assignment.items():
            if s != split:
                continue
            c = self.categories_by_file[p]
            if category is None or c == category or c.startswith(category.rstrip("/") + "/"):
                out.append(p)
        return sorted(out)

    def categories(self, split: str) -> list[str]:
        """Leaf categories with at least one file in ``split``."""
        _check_split(split)
        return sorted({self.categories_by_file[p] for p, s in self.assignment.items() if s == split})

    def counts(self) -> dict[str, dict[str, int]]:
        """category -> {split: number of files} (every split present, possibly 0)."""
        out: dict[str, dict[str, int]] = {}
        for p, s in self.assignment.items():
            row = out.setdefault(self.categories_by_file[p], dict.fromkeys(SPLITS, 0))
            row[s] += 1
        return dict(sorted(out.items()))

    def totals(self) -> dict[str, int]:
        """Number of files per split."""
        out = dict.fromkeys(SPLITS, 0)
        for s in self.assignment.values():
            out[s] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "fractions": list(self.fractions),
            "assignment": dict(sorted(self.assignment.items())),
        }


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")


def _split_sizes(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """Units per split for a category of ``n`` units (see ``split_bank``)."""
    _, f_val, f_test = fractions
    if n <= 1:
        return n, 0, 0
    if n == 2:
        return (1, 0, 1) if f_test > 0 else (1, 1, 0) if f_val > 0 else (2, 0, 0)
    n_test = max(1, round(n * f_test)) if f_test > 0 else 0
    n_val = max(1, round(n * f_val)) if f_val > 0 else 0
    while n - n_test - n_val < 1:  # keep at least one unit for training
        if n_val >= n_test and n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    return n - n_test - n_val, n_val, n_test


def split_bank(bank: SoundBank, *, seed: int = 0, fractions: Iterable[float] = (0.8, 0.1, 0.1)) -> BankSplit:
    """Assign every source file of a bank to train / validation / test, per category.

    Rule (per leaf category, over near-duplicate groups so that re-encoded copies move together):
    1 group -> train only; 2 groups -> one train, one test; n >= 3 -> test gets max(1, round(n f_test)),
    validation max(1, round(n f_val)), train the rest (at least 1). The order within a category is a
    shuffle seeded by (seed, crc32(category)), so the result does not depend on other categories or on
    file-system order. No file, and no near-duplicate of a file, is ever in two splits.

    Args:
        bank: The bank.
        seed: Seed of the assignment (keep it fixed across datasets so that splits agree).
        fractions: (train, validation, test) fractions; they must be >= 0 and sum to 1.

    Returns:
        The BankSplit.
    """
    fr = tuple(float(x) for x in fractions)
    if len(fr) != 3 or min(fr) < 0 or abs(sum(fr) - 1.0) > 1e-6 or fr[0] <= 0:
        raise DataError(
            f"split fractions must be 3 non-negative numbers summing to 1 with train > 0, got {fr}"
        )
    groups = bank.duplicate_groups()
    members: dict[str, list[str]] = {}
    for f in bank.files:
        members.setdefault(groups[f.path], []).append(f.path)
    assignment: dict[str, str] = {}
    for category in bank.categories:
        units = sorted(
            {groups[f.path] for f in bank.files if f.category == category and f.path not in assignment}
        )
        rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(category.encode())])
        order = [units[i] for i in rng.permutation(len(units))]
        n_train, n_val, _ = _split_sizes(len(order), fr)
        for i, g in enumerate(order):
            split = "train" if i < n_train else "validation" if i < n_train + n_val else "test"
            for p in members[g]:
                assignment.setdefault(p, split)
    return BankSplit(
        seed=seed,
        fractions=fr,
        assignment=assignment,
        categories_by_file={f.path: f.category for f in bank.files},
    )


def _mp_context(preload: Sequence[str] = ()):
    """Process start method for worker pools: ``forkserver`` (workers do not inherit the threads of the
    parent, e.g. FFmpeg / OpenMP pools, which can deadlock a plain fork; ``preload`` modules are imported
    once in the server and shared by every worker), ``spawn`` where unavailable."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    return ctx


def with_groups(files: Iterable[SoundFile], groups: dict[str, str]) -> list[SoundFile]:
    """Copies of ``files`` with their near-duplicate group set from ``groups``."""
    return [replace(f, group=groups.get(f.path, f.path)) for f in files]
