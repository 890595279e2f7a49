"""The default sound bank: real recorded effects from Debian's ``ufoai-sound`` package.

``prepare_default_bank`` obtains the package (``apt-get download ufoai-sound``, or a given ``.deb``, or an
already-extracted folder), extracts it (``dpkg-deb -x``, or a pure-Python ar/tar reader where dpkg is
absent), reads the sounds from ``usr/share/games/ufoai/base/0snd.pk3`` (a zip) and organises them into a
bank with a Foley taxonomy (``footsteps/<surface>``, ``impact/<kind>``, ``break/<material>``,
``door/<action>``, ``ambience/<kind>``). Licence and attribution travel with the bank: the Debian
``copyright`` file is copied verbatim and ``bank.json`` lists, for every file, its category, its source
path in the package and its licence (parsed from the copyright file's ``Files:`` / ``License:`` stanzas,
``GPL-2+`` by the ``Files: *`` stanza unless a later stanza says otherwise).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foleykit.errors import DataError
from foleykit.paths import foleykit_home
from foleykit.utils.io import atomic_dir, atomic_write_json

log = logging.getLogger(__name__)

PACKAGE = "ufoai-sound"
STAMPS_PACKAGE = "tuxpaint-stamps-default"
PK3_PATH = "usr/share/games/ufoai/base/0snd.pk3"
COPYRIGHT_PATH = f"usr/share/doc/{PACKAGE}/copyright"
#: Paths inside the pk3 are ``sound/...``; the copyright file names them ``base/sound/...``.
COPYRIGHT_PREFIX = "base/"

#: (glob on the path inside the pk3, category). First match wins; unmatched sounds are left out.
TAXONOMY: tuple[tuple[str, str], ...] = (
    *(
        (f"sound/footsteps/{s}[0-9].ogg", f"footsteps/{s}")
        for s in ("carpet", "dirt", "grass", "gravel", "metal", "snow", "stone", "tile", "wood")
    ),
    ("sound/footsteps/sand*.ogg", "footsteps/sand"),
    ("sound/footsteps/splash[0-9].ogg", "footsteps/water"),
    ("sound/footsteps/linoleum.ogg", "footsteps/linoleum"),
    ("sound/footsteps/hitground[0-9].ogg", "impact/ground"),
    ("sound/impact/*-bodyimpact.ogg", "impact/thud"),
    ("sound/impact/knife-impact.ogg", "impact/metal"),
    ("sound/impact/nail-impact.ogg", "impact/metal"),
    ("sound/impact/bullet-impact.ogg", "impact/metal"),
    ("sound/weapons/grenade-bounce.ogg", "impact/metal"),
    ("sound/seq/sword-hit.ogg", "impact/metal"),
    ("sound/impact/water*-impact.ogg", "impact/water"),
    ("sound/impact/laser-impact.ogg", "impact/energy"),
    ("sound/impact/plasma*-impact.ogg", "impact/energy"),
    ("sound/misc/breakglass[0-9]*.ogg", "break/glass"),
    ("sound/misc/breakwood[0-9]*.ogg", "break/wood"),
    ("sound/misc/breakmetal[0-9]*.ogg", "break/metal"),
    ("sound/misc/breakelectric[0-9]*.ogg", "break/electric"),
    ("sound/doors/door[0-9]-open.ogg", "door/open"),
    ("sound/doors/door[0-9]-close.ogg", "door/close"),
    ("sound/doors/open_close.ogg", "door/open_close"),
    ("sound/doors/creak*.ogg", "door/creak"),
    ("sound/ambience/creak.ogg", "door/creak"),
    *(
        (f"sound/ambience/{n}.ogg", "ambience/fire")
        for n in ("fire", "fire0[0-9]", "fire[0-9]", "firesoft", "smallfire")
    ),
    *(
        (f"sound/ambience/{n}.ogg", "ambience/water")
        for n in ("water", "water0[0-9]", "waterfontain", "alienbase-bubbles")
    ),
    *((f"sound/ambience/{n}.ogg", "ambience/wind") for n in ("arcticwind", "sand-city", "wind_turbine")),
    *(
        (f"sound/ambience/{n}.ogg", "ambience/machine")
        for n in (
            "machine1",
            "hum",
            "hum2",
            "steam",
            "minepump03",
            "droning_*",
            "alienmachinery[0-9]",
            "alien-generator",
            "alien-ventilation",
            "alienpowermachinery1",
            "engine_alien_*",
            "alien_engine",
            "lights_loop",
        )
    ),
    ("sound/ambience/cricket_loop.ogg", "ambience/night"),
    ("sound/ambience/ufo_night_atm.ogg", "ambience/night"),
    ("sound/ambience/thunder[0-9].ogg", "ambience/thunder"),
    ("sound/ambience/sparks*.ogg", "ambience/electric"),
    ("sound/ambience/city_abnd_ufoai_atm.ogg", "ambience/city"),
)

ATTRIBUTION = (
    "Sound effects from UFO: Alien Invasion (https://ufoai.org), (c) 2002-2014 The UFO:AI Team and the "
    "authors listed in the accompanying 'copyright' file, as packaged by Debian (ufoai-sound). Licences per "
    "file (mostly CC-BY-SA-3.0; some GPL-2+, GPL-2, CC-BY-3.0, public domain) are listed in bank.json."
)


def categorise(pk3_path: str) -> str | None:
    """Category of a sound inside the pk3 (``sound/footsteps/grass1.ogg`` -> ``footsteps/grass``)."""
    for pattern, category in TAXONOMY:
        if fnmatch.fnmatchcase(pk3_path, pattern):
            return category
    return None


# --- Debian copyright (DEP-5) ----------------------------------------------------------------------
@dataclass(frozen=True)
class CopyrightStanza:
    """One ``Files:`` paragraph of a machine-readable Debian copyright file."""

    patterns: tuple[str, ...]
    license: str
    copyright: str


def parse_copyright(text: str) -> list[CopyrightStanza]:
    """Parse the ``Files:`` paragraphs of a DEP-5 copyright file (in file order).

    Args:
        text: The file's text.

    Returns:
        The Files stanzas; their ``license`` is the first word line of the License field.
    """
    stanzas: list[CopyrightStanza] = []
    for para in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, list[str]] = {}
        key = None
        for line in para.split("\n"):
            if not line.strip() or line.startswith("#"):
                continue
            if line[0] in " \t" and key is not None:
                fields[key].append(line.strip())
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = [value.strip()] if value.strip() else []
        if "files" in fields and "license" in fields:
            patterns = tuple(p for line in fields["files"] for p in line.split())
            lic = fields["license"][0] if fields["license"] else "unknown"
            stanzas.append(
                CopyrightStanza(
                    patterns=patterns, license=lic, copyright="; ".join(fields.get("copyright", []))
                )
            )
    return stanzas


def license_for(path: str, stanzas: list[CopyrightStanza]) -> CopyrightStanza | None:
    """The stanza governing ``path`` (DEP-5: the last matching ``Files`` paragraph wins; ``*`` spans /)."""
    found = None
    for s in stanzas:
        if any(fnmatch.fnmatchcase(path, p) for p in s.patterns):
            found = s
    return found


# --- obtaining the package -------------------------------------------------------------------------
def _extract_deb(deb: Path, dest: Path) -> None:
    """Extract a .deb's data archive into ``dest`` (dpkg-deb -x, else a pure-Python ar + tar reader)."""
    if shutil.which("dpkg-deb"):
        r = subprocess.run(
            ["dpkg-deb", "-x", str(deb), str(dest)], capture_output=True, text=True, check=False
        )
        if r.returncode != 0:
            raise DataError(f"dpkg-deb -x {deb} failed: {r.stderr.strip() or r.stdout.strip()}")
        return
    with open(deb, "rb") as fh:
        if fh.read(8) != b"!<arch>\n":
            raise DataError(f"{deb} is not a Debian package (no ar header)")
        while True:
            header = fh.read(60)
            if len(header) < 60:
                raise DataError(f"{deb} has no data.tar member")
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            if name.startswith("data.tar"):
                if name.endswith(".zst"):
                    raise DataError(f"{deb} uses zstd compression; install dpkg (dpkg-deb) to extract it")
                with tempfile.TemporaryFile() as tmp:
                    shutil.copyfileobj(_LimitedReader(fh, size), tmp)
                    tmp.seek(0)
                    with tarfile.open(fileobj=tmp, mode="r:*") as tar:
                        tar.extractall(dest, filter="data")
                return
            fh.seek(size + (size % 2), os.SEEK_CUR)


class _LimitedReader:
    def __init__(self, fh: Any, size: int) -> None:
        self.fh, self.left = fh, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.fh.read(n)
        self.left -= len(data)
        return data


def download_deb(dest_dir: Path, *, package: str = PACKAGE) -> Path:
    """``apt-get download <package>`` into ``dest_dir`` (reused when a previous run left it there)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(dest_dir.glob(f"{package}_*.deb"))
    if existing:
        return existing[-1]
    if not shutil.which("apt-get"):
        raise DataError(
            f"apt-get is not available to download {package}; download the .deb from "
            f"https://packages.debian.org/{package} and pass --deb FILE (or --extracted DIR)"
        )
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".apt-") as tmp:
        r = subprocess.run(
            ["apt-get", "download", package], cwd=tmp, capture_output=True, text=True, check=False
        )
        debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
        if r.returncode != 0 or not debs:
            raise DataError(
                f"`apt-get download {package}` failed: {(r.stderr or r.stdout).strip()[-500:]}\n"
                f"Try `apt-get update` first, or download the .deb yourself and pass --deb FILE"
            )
        final = dest_dir / debs[-1].name
        os.replace(debs[-1], final)
    return final


def _locate(extracted: Path) -> tuple[Path, Path]:
    """Find (pk3 file or unzipped folder holding sound/, copyright file) in an extracted package folder."""
    pk3 = extracted / PK3_PATH
    source: Path | None = pk3 if pk3.is_file() else None
    if source is None and (extracted / "sound").is_dir():
        source = extracted
    if source is None and extracted.suffix == ".pk3" and extracted.is_file():
        source = extracted
    if source is None:
        raise DataError(
            f"{extracted} holds neither {PK3_PATH} (a `dpkg-deb -x` folder) "
            "nor a sound/ folder (an unzipped pk3)"
        )
    base = extracted if extracted.is_dir() else extracted.parent
    for c in (base / COPYRIGHT_PATH, base / "copyright", *sorted(base.parent.glob(f"*/{COPYRIGHT_PATH}"))):
        if c.is_file():
            return source, c
    raise DataError(
        f"the Debian copyright file of {PACKAGE} was not found near {extracted} (looked for {COPYRIGHT_PATH} "
        "and copyright); the licence must travel with the sounds, so pass the .deb or its dpkg-deb -x folder"
    )


def _list_sources(source: Path) -> dict[str, Any]:
    """pk3-relative path -> opener (zip member name or file path)."""
    if source.is_file():
        try:
            with zipfile.ZipFile(source) as z:
                return {n: n for n in z.namelist() if not n.endswith("/")}
        except zipfile.BadZipFile as e:
            raise DataError(f"{source} is not a valid pk3 (zip) archive: {e}") from e
    return {p.relative_to(source).as_posix(): p for p in source.rglob("*") if p.is_file()}


def is_prepared(output: Path, *, stamps: bool = False) -> bool:
    """True when ``output`` holds a complete bank (its manifest and every file it lists; with ``stamps``,
    also the Tux Paint stamp sounds)."""
    import json

    manifest = output / "bank.json"
    if not manifest.is_file():
        return False
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        files = data["files"]
    except (ValueError, KeyError, OSError):
        return False
    if stamps and STAMPS_PACKAGE not in data.get("packages", []):
        return False
    return all((output / f["path"]).is_file() for f in files) and (output / "copyright").is_file()


def default_bank_dir() -> Path:
    """Default location of the prepared bank: ``$FOLEYKIT_HOME/banks/ufoai``."""
    return foleykit_home() / "banks" / "ufoai"


def prepare_default_bank(
    output: str | os.PathLike | None = None,
    *,
    deb: str | os.PathLike | None = None,
    extracted: str | os.PathLike | None = None,
    force: bool = False,
    sample_rate: int = 16000,
    stamps: bool = False,
    stamps_deb: str | os.PathLike | None = None,
    stamps_extracted: str | os.PathLike | None = None,
) -> Path:
    """Build the default bank from ``ufoai-sound`` (+ the Tux Paint stamps' own sounds), idempotently: a
    complete bank is left as it is.

    Args:
        output: Bank folder (default ``$FOLEYKIT_HOME/banks/ufoai``).
        deb: A downloaded ``ufoai-sound_*.deb`` (skips apt-get).
        extracted: A ``dpkg-deb -x`` folder of the package, or an unzipped pk3 (folder with ``sound/``)
            whose copyright file lies beside it.
        force: Rebuild even when the bank is complete.
        sample_rate: Rate of the stored analysis (onsets, near-duplicate groups).
        stamps: Also add the sounds of Debian ``tuxpaint-stamps-default`` (animals, tools, instruments,
            household objects; ``foleykit.data.stamps.STAMP_SOUNDS``) under their own categories.
        stamps_deb: A downloaded ``tuxpaint-stamps-default_*.deb`` (skips apt-get).
        stamps_extracted: A ``dpkg-deb -x`` folder of that package.

    Returns:
        The bank folder. The folder is written atomically: a failure leaves the previous state.
    """
    out = Path(output).expanduser() if output is not None else default_bank_dir()
    if is_prepared(out, stamps=stamps) and not force:
        log.info("bank at %s is already complete", out)
        return out
    from foleykit.utils.io import check_replaceable

    check_replaceable(out, "bank.json", "a sound bank")  # before any download
    with tempfile.TemporaryDirectory(prefix="foleykit-ufoai-") as work:
        work_dir = Path(work)
        if extracted is not None:
            root = Path(extracted).expanduser()
            if not root.exists():
                raise DataError(f"--extracted {root} does not exist")
        else:
            deb_path = (
                Path(deb).expanduser() if deb is not None else download_deb(foleykit_home() / "downloads")
            )
            if not deb_path.is_file():
                raise DataError(f"--deb {deb_path} does not exist")
            root = work_dir / "deb"
            root.mkdir()
            _extract_deb(deb_path, root)
        source, copyright_file = _locate(root)
        stamp_dirs = None
        if stamps:
            from foleykit.data.stamps import locate_stamps, obtain_package

            stamp_root = obtain_package(
                STAMPS_PACKAGE, deb=stamps_deb, extracted=stamps_extracted, work=work_dir
            )
            stamp_dirs = locate_stamps(stamp_root)
        _organise(source, copyright_file, out, sample_rate=sample_rate, stamps=stamp_dirs)
    return out


def _organise(
    source: Path,
    copyright_file: Path,
    out: Path,
    *,
    sample_rate: int,
    stamps: tuple[Path, Path] | None = None,
) -> None:
    from foleykit.data.bank import SoundBank

    stanzas = parse_copyright(copyright_file.read_text(encoding="utf-8", errors="replace"))
    members = _list_sources(source)
    entries, excluded = [], []
    with atomic_dir(out, marker="bank.json", what="a sound bank") as tmp:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a bank is shared data
        z = zipfile.ZipFile(source) if source.is_file() else None
        try:
            for name in sorted(members):
                if not name.startswith("sound/") or not name.endswith(".ogg"):
                    continue
                category = categorise(name)
                if category is None:
                    excluded.append(name)
                    continue
                rel = f"{category}/{Path(name).name}"
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                if z is not None:
                    with z.open(members[name]) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                else:
                    shutil.copyfile(members[name], dest)
                st = license_for(COPYRIGHT_PREFIX + name, stanzas)
                entries.append(
                    {
                        "path": rel,
                        "category": category,
                        "source": COPYRIGHT_PREFIX + name,
                        "license": st.license if st else "unknown",
                        "copyright": st.copyright if st else "",
                    }
                )
        finally:
            if z is not None:
                z.close()
        if not entries:
            raise DataError(f"no sounds matching the taxonomy were found in {source}")
        shutil.copyfile(copyright_file, tmp / "copyright")
        attribution = ATTRIBUTION
        packages = [PACKAGE]
        if stamps is not None:
            from foleykit.data import stamps as tux

            entries += tux.add_stamp_sounds(stamps[0], stamps[1], tmp)
            attribution = f"{ATTRIBUTION}\n{tux.ATTRIBUTION}"
            packages.append(STAMPS_PACKAGE)
        (tmp / "ATTRIBUTION.txt").write_text(attribution + "\n", encoding="utf-8")
        # Analyse every file once (duration, onset, near-duplicate groups) so that later loads are instant.
        bank = SoundBank(tmp, sample_rate=sample_rate)  # no manifest yet: scans the folder
        groups = bank.duplicate_groups()
        for e in entries:
            f = bank.file(e["path"])
            a = bank.analysis(f)
            e.update(
                duration=round(f.duration, 6),
                sample_rate=f.sample_rate,
                channels=f.channels,
                group=groups[f.path],
                onset=round(a.onset, 6),
                peak=round(a.peak, 6),
                peak_amplitude=round(a.peak_amplitude, 6),
                rms=round(a.rms, 6),
            )
        atomic_write_json(
            tmp / "bank.json",
            _manifest(entries, excluded, analysed=sample_rate, packages=packages, attribution=attribution),
        )


def _manifest(
    entries: list[dict[str, Any]],
    excluded: list[str],
    *,
    analysed: int | None,
    packages: list[str] | None = None,
    attribution: str = ATTRIBUTION,
) -> dict[str, Any]:
    return {
        "name": "ufoai",
        "package": PACKAGE,
        "packages": packages or [PACKAGE],
        "source": "Debian package ufoai-sound (usr/share/games/ufoai/base/0snd.pk3)"
        + (
            "; Debian package tuxpaint-stamps-default (usr/share/tuxpaint/stamps)"
            if packages and len(packages) > 1
            else ""
        ),
        "homepage": "https://ufoai.org",
        "attribution": attribution,
        "license_file": "copyright",
        "analysis_sample_rate": analysed,
        "taxonomy": [{"pattern": p, "category": c} for p, c in TAXONOMY],
        "excluded": excluded,
        "files": entries,
    }
