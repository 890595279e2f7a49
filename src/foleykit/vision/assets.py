"""The pretrained vision models: fetched once at set-up from package registries, pinned, licences kept.

Two packages carry the TFLite models the scene encoder runs (``docs/conditioning.md``, "Vision features"):

- PyPI ``mediapipe==0.10.21`` (Apache-2.0; its cp311 manylinux wheel): BlazePose (``pose_detection``,
  ``pose_landmark_full``: 33 body landmarks + a person mask) and the landscape selfie segmentation (person
  mask of a whole frame). Only these files are taken out of the wheel; mediapipe itself is never installed.
- npm ``@mediapipe/objectron@0.4.1675468480`` (Apache-2.0): its ``objectron_solution_packed_assets.data``
  holds, as byte ranges listed by ``objectron_solution_packed_assets_loader.js``, an SSD MobileNetV2 detector
  (fp16 TFLite) of 24 Open Images classes and its label map.

:func:`prepare_vision` finds the archives (given files, else the registries: PyPI's simple JSON index and the
npm registry's package document give the file URLs), checks them against the sha256 pins below, extracts
only those files (checking each against its own pin, and the TFLite ``TFL3`` identifier of the byte range),
copies the licence texts next to them and writes ``vision.json`` (sources, files, sha256, licence). The
folder is ``$FOLEYKIT_HOME/vision`` unless another is given; it is replaced as a whole (atomic).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foleykit.errors import DataError, WeightsNotFoundError
from foleykit.paths import foleykit_home
from foleykit.utils.io import atomic_dir, atomic_write_json, check_replaceable

log = logging.getLogger(__name__)

MANIFEST = "vision.json"
FETCH_COMMAND = "foleykit models fetch-vision"
LICENSE = "Apache-2.0"
ATTRIBUTION = (
    "Pose detection / landmark and selfie segmentation models from MediaPipe 0.10.21 (PyPI wheel), SSD "
    "MobileNetV2 Open Images detector from @mediapipe/objectron 0.4.1675468480 (npm); (c) Google LLC, "
    "Apache License 2.0 (LICENSE-mediapipe.txt)."
)


@dataclass(frozen=True)
class Archive:
    """A package archive the models come from, pinned by sha256."""

    key: str
    registry: str  # "pypi" | "npm"
    package: str
    version: str
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ModelFile:
    """One file taken out of an archive: a zip / tar member, or a byte range of a member."""

    name: str  # file name in the vision folder
    archive: str  # Archive.key
    member: str  # path inside the archive
    sha256: str
    packed: str | None = None  # name of the asset inside a packed .data file (byte range from the loader js)


WHEEL = Archive(
    key="wheel",
    registry="pypi",
    package="mediapipe",
    version="0.10.21",
    filename="mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
    size=35622638,
)
OBJECTRON = Archive(
    key="objectron",
    registry="npm",
    package="@mediapipe/objectron",
    version="0.4.1675468480",
    filename="objectron-0.4.1675468480.tgz",
    sha256="fc3e37b326b05e8f596099c90b3e0931b05a56cd3160b9ac450b621794bac94c",
    size=32667233,
)
ARCHIVES = (WHEEL, OBJECTRON)

_PACKED = "package/objectron_solution_packed_assets.data"
FILES: tuple[ModelFile, ...] = (
    ModelFile(
        "pose_detection.tflite",
        "wheel",
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    ),
    ModelFile(
        "pose_landmark_full.tflite",
        "wheel",
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    ),
    ModelFile(
        "selfie_segmentation_landscape.tflite",
        "wheel",
        "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite",
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
    ),
    ModelFile(
        "LICENSE-mediapipe.txt",
        "wheel",
        "mediapipe-0.10.21.dist-info/LICENSE",
        "8707eef0533987efc5b155d64761eeb6e20793f50b9bd1a68dad1cf4719d0ed8",
    ),
    ModelFile(
        "object_detection_ssd_mobilenetv2_oidv4_fp16.tflite",
        "objectron",
        _PACKED,
        "d0a5255bf8c4f5a0bc4240741a76c41d5e939f7655078f945f50ab53a9375da6",
        packed="object_detection_ssd_mobilenetv2_oidv4_fp16.tflite",
    ),
    ModelFile(
        "object_detection_oidv4_labelmap.txt",
        "objectron",
        _PACKED,
        "c148336a65f673013609a923fdcbdeec0f49df935045029c3746a3828a0e80e0",
        packed="object_detection_oidv4_labelmap.txt",
    ),
)
#: Copied as they are (not pinned: they only document the npm package and its licence field).
NPM_DOC_FILES = {"package/package.json": "objectron-package.json", "package/README.md": "objectron-README.md"}
_LOADER_JS = "package/objectron_solution_packed_assets_loader.js"


# --- where the files live -------------------------------------------------------------------------------
def default_vision_dir() -> Path:
    """``$FOLEYKIT_HOME/vision`` (``FOLEYKIT_VISION_DIR`` overrides it)."""
    env = os.environ.get("FOLEYKIT_VISION_DIR")
    return Path(env).expanduser() if env else foleykit_home() / "vision"


def missing_files(folder: str | os.PathLike | None = None) -> list[str]:
    """Names of the model files that are absent (or of the wrong size per the manifest) in ``folder``."""
    root = Path(folder).expanduser() if folder else default_vision_dir()
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        sizes = {n: int(f["size"]) for n, f in manifest["files"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        sizes = {}
    out = []
    for f in FILES:
        p = root / f.name
        if not p.is_file() or (f.name in sizes and p.stat().st_size != sizes[f.name]):
            out.append(f.name)
    return out


def vision_files(folder: str | os.PathLike | None = None) -> dict[str, Path]:
    """Model file name -> path, after checking that every file is there.

    Raises:
        WeightsNotFoundError: a file is missing; the message names the command that fetches them.
    """
    root = Path(folder).expanduser() if folder else default_vision_dir()
    missing = missing_files(root)
    if missing:
        raise WeightsNotFoundError(
            f"vision models not installed in {root} (missing {', '.join(missing)}); run `{FETCH_COMMAND}` "
            "(downloads mediapipe 0.10.21 from PyPI and @mediapipe/objectron from npm, ~70 MB, once)"
        )
    return {f.name: root / f.name for f in FILES}


# --- checking -----------------------------------------------------------------------------------------------
def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str, *, what: str) -> None:
    """Raise :class:`DataError` unless the file's sha256 is ``expected``."""
    got = sha256_of(path)
    if got != expected:
        raise DataError(
            f"{what}: {path} has sha256 {got}, expected {expected}; it is not the pinned file (a different "
            "version or a damaged download). Delete it and fetch again, or pass the right file"
        )


def packed_ranges(loader_js: str) -> dict[str, tuple[int, int]]:
    """``{asset base name: (start, end)}`` from an emscripten ``*_packed_assets_loader.js``."""
    out = {}
    pattern = r'"filename":\s*"([^"]+)",\s*"start":\s*(\d+),\s*"end":\s*(\d+)'
    for name, start, end in re.findall(pattern, loader_js):
        out[name.rsplit("/", 1)[-1]] = (int(start), int(end))
    return out


def find_tflite(data: bytes) -> list[int]:
    """Offsets of the TFLite flatbuffers in ``data`` (the ``TFL3`` identifier sits 4 bytes into a model)."""
    return [m.start() - 4 for m in re.finditer(b"TFL3", data) if m.start() >= 4]


# --- obtaining the archives -----------------------------------------------------------------------------
def _http_get(url: str, *, accept: str | None = None, timeout: float = 60.0) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read()


def registry_url(archive: Archive) -> str:
    """The download URL of a pinned archive, from its registry's index (PyPI simple JSON / npm document)."""
    if archive.registry == "pypi":
        doc = json.loads(
            _http_get(
                f"https://pypi.org/simple/{archive.package}/", accept="application/vnd.pypi.simple.v1+json"
            )
        )
        for f in doc.get("files", []):
            if f.get("filename") == archive.filename:
                return str(f["url"])
        raise DataError(f"PyPI lists no file {archive.filename} for {archive.package}")
    name = archive.package.replace("/", "%2f")
    doc = json.loads(_http_get(f"https://registry.npmjs.org/{name}/{archive.version}"))
    try:
        return str(doc["dist"]["tarball"])
    except (KeyError, TypeError):
        raise DataError(f"the npm registry has no tarball for {archive.package}@{archive.version}") from None


def _pip_download(archive: Archive, dest: Path) -> Path:
    """``pip download --no-deps`` of the pinned wheel (the registry client's own way; used as a fallback)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--platform",
        "manylinux_2_28_x86_64",
        "-d",
        str(dest),
        f"{archive.package}=={archive.version}",
    ]
    r = subprocess.run(cmd, check=False, capture_output=True, text=True)
    path = dest / archive.filename
    if r.returncode != 0 or not path.is_file():
        raise DataError(
            f"pip download {archive.package}=={archive.version} failed: {r.stderr.strip()[-400:]}"
        )
    return path


def download_archive(archive: Archive, dest: Path) -> Path:
    """Download a pinned archive into ``dest`` and check its sha256.

    Raises:
        DataError: the registry cannot be reached, or the file is not the pinned one.
    """
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / archive.filename
    try:
        url = registry_url(archive)
        log.info("downloading %s", url)
        with open(path, "wb") as fh:
            req = urllib.request.Request(url)
            with urllib.request.urlopen(req, timeout=120) as resp:
                shutil.copyfileobj(resp, fh, 1 << 20)
    except (OSError, ValueError) as err:
        if archive.registry != "pypi":
            raise DataError(
                f"could not download {archive.package}@{archive.version} from the npm registry: {err}; "
                f"download {archive.filename} on a connected machine and pass it with --objectron FILE"
            ) from err
        path = _pip_download(archive, dest)
    verify_sha256(path, archive.sha256, what=f"{archive.package} {archive.version}")
    return path


# --- extracting -----------------------------------------------------------------------------------------
def _read_members(archive: Archive, path: Path, members: set[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        if archive.registry == "pypi":
            with zipfile.ZipFile(path) as zf:
                for m in members:
                    out[m] = zf.read(m)
        else:
            with tarfile.open(path, "r:gz") as tf:
                for m in members:
                    fh = tf.extractfile(m)
                    if fh is None:
                        raise KeyError(m)
                    out[m] = fh.read()
    except KeyError as err:
        raise DataError(f"{path} has no member {err}; is it {archive.package} {archive.version}?") from None
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as err:
        raise DataError(f"cannot read {path}: {err}") from err
    return out


def _extract(archive: Archive, path: Path, out: Path) -> dict[str, dict[str, Any]]:
    """Write this archive's files into ``out``; returns their manifest entries."""
    files = [f for f in FILES if f.archive == archive.key]
    members = {f.member for f in files}
    if archive.registry == "npm":
        members |= {_LOADER_JS, *NPM_DOC_FILES}
    data = _read_members(archive, path, members)
    ranges = packed_ranges(data[_LOADER_JS].decode("utf-8", "replace")) if _LOADER_JS in data else {}
    entries: dict[str, dict[str, Any]] = {}
    for f in files:
        blob = data[f.member]
        entry: dict[str, Any] = {"source": archive.key, "member": f.member}
        if f.packed is not None:
            if f.packed not in ranges:
                raise DataError(f"{_LOADER_JS} in {path} lists no {f.packed}")
            start, end = ranges[f.packed]
            blob = blob[start:end]
            entry["range"] = [start, end]
            if f.name.endswith(".tflite") and blob[4:8] != b"TFL3":
                raise DataError(
                    f"bytes {start}-{end} of {f.member} are not a TFLite model (TFL3 models found at offsets "
                    f"{find_tflite(data[f.member])[:4]})"
                )
        got = hashlib.sha256(blob).hexdigest()
        if got != f.sha256:
            raise DataError(f"{f.name} from {path} has sha256 {got}, expected {f.sha256}")
        (out / f.name).write_bytes(blob)
        entries[f.name] = {**entry, "sha256": got, "size": len(blob)}
    for member, name in NPM_DOC_FILES.items() if archive.registry == "npm" else ():
        (out / name).write_bytes(data[member])
    return entries


def prepare_vision(
    output: str | os.PathLike | None = None,
    *,
    wheel: str | os.PathLike | None = None,
    objectron: str | os.PathLike | None = None,
    force: bool = False,
) -> Path:
    """Fetch, verify and extract the vision models into ``output`` (default :func:`default_vision_dir`).

    Idempotent: a complete folder is left as it is unless ``force``.

    Args:
        output: Target folder.
        wheel: A local ``mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl`` (else PyPI).
        objectron: A local ``@mediapipe/objectron`` 0.4.1675468480 npm tarball (else the npm registry).
        force: Rebuild even when the folder is complete.

    Returns:
        The folder.

    Raises:
        DataError: a download failed, or an archive / a file does not match its sha256 pin.
    """
    out = Path(output).expanduser() if output else default_vision_dir()
    if not force and not missing_files(out):
        return out
    check_replaceable(out, MANIFEST, "a vision-model folder")  # before any download
    given = {"wheel": wheel, "objectron": objectron}
    with tempfile.TemporaryDirectory(prefix="foleykit-vision-") as tmp:
        paths: dict[str, Path] = {}
        for a in ARCHIVES:
            if given[a.key] is not None:
                p = Path(given[a.key]).expanduser()
                if not p.is_file():
                    raise DataError(f"{p} does not exist (the {a.package} {a.version} archive)")
                verify_sha256(p, a.sha256, what=f"{a.package} {a.version}")
                paths[a.key] = p
            else:
                paths[a.key] = download_archive(a, Path(tmp))
        with atomic_dir(out, marker=MANIFEST, what="a vision-model folder") as work:
            files: dict[str, dict[str, Any]] = {}
            for a in ARCHIVES:
                files.update(_extract(a, paths[a.key], work))
            atomic_write_json(
                work / MANIFEST,
                {
                    "format": 1,
                    "license": LICENSE,
                    "attribution": ATTRIBUTION,
                    "sources": {
                        a.key: {
                            "registry": a.registry,
                            "package": a.package,
                            "version": a.version,
                            "filename": a.filename,
                            "sha256": a.sha256,
                        }
                        for a in ARCHIVES
                    },
                    "files": files,
                },
            )
    return out
