"""Fetching the vision models: sha256 pins, byte-range extraction, manifest, idempotence — no network."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from foleykit.errors import DataError, WeightsNotFoundError
from foleykit.vision import assets

# the downloaded packages (wheel, npm tarball, unpacked Debian packages under x/), when a developer has them
ASSETS = Path(os.environ.get("FOLEYKIT_TEST_ASSETS", "/nonexistent"))
REAL_WHEEL = ASSETS / "mp" / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
REAL_TGZ = ASSETS / "mediapipe-objectron-0.4.1675468480.tgz"

FAKE_TFLITE = b"\x1c\x00\x00\x00TFL3" + bytes(range(200))
LABELS = b"???\nPerson\nCoffee cup\n"


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _fake_archives(tmp: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """A wheel-like zip and an npm-like tgz holding the members the extractor reads."""
    content = {
        "pose_detection.tflite": b"\x1c\x00\x00\x00TFL3pose-det",
        "pose_landmark_full.tflite": b"\x1c\x00\x00\x00TFL3landmarks",
        "selfie_segmentation_landscape.tflite": b"\x1c\x00\x00\x00TFL3selfie",
        "LICENSE-mediapipe.txt": b"Apache License 2.0 (fake)",
        "object_detection_ssd_mobilenetv2_oidv4_fp16.tflite": FAKE_TFLITE,
        "object_detection_oidv4_labelmap.txt": LABELS,
    }
    wheel = tmp / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for f in assets.FILES:
            if f.archive == "wheel":
                zf.writestr(f.member, content[f.name])
    packed = LABELS + FAKE_TFLITE
    loader = (
        'Module["loadPackage"]({"files": [{"filename": "/object_detection_oidv4_labelmap.txt", "start": 0, '
        f'"end": {len(LABELS)}}}, {{"filename": "/third_party/mediapipe/modules/objectron/'
        f'object_detection_ssd_mobilenetv2_oidv4_fp16.tflite", "start": {len(LABELS)}, "end": {len(packed)}}}]}})'
    ).encode()
    tgz = tmp / "fake.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        for name, data in (
            (assets._PACKED, packed),
            (assets._LOADER_JS, loader),
            ("package/package.json", b'{"license": "Apache-2.0"}'),
            ("package/README.md", b"readme"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return wheel, tgz, content


@pytest.fixture
def fake_pins(tmp_path, monkeypatch):
    """Pins of the module pointed at fake archives (so the extraction logic runs without real files)."""
    wheel, tgz, content = _fake_archives(tmp_path)
    w = dataclasses.replace(assets.WHEEL, sha256=assets.sha256_of(wheel), size=wheel.stat().st_size)
    o = dataclasses.replace(assets.OBJECTRON, sha256=assets.sha256_of(tgz), size=tgz.stat().st_size)
    files = tuple(dataclasses.replace(f, sha256=_sha(content[f.name])) for f in assets.FILES)
    monkeypatch.setattr(assets, "WHEEL", w)
    monkeypatch.setattr(assets, "OBJECTRON", o)
    monkeypatch.setattr(assets, "ARCHIVES", (w, o))
    monkeypatch.setattr(assets, "FILES", files)
    return wheel, tgz, content


def test_verify_sha256_refuses_a_wrong_file(tmp_path):
    f = tmp_path / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    f.write_bytes(b"not the wheel")
    with pytest.raises(DataError, match="expected 05dc4a9e"):
        assets.verify_sha256(f, assets.WHEEL.sha256, what="mediapipe")
    assets.verify_sha256(f, _sha(b"not the wheel"), what="mediapipe")  # the right digest passes


def test_prepare_refuses_archives_that_are_not_the_pinned_ones(tmp_path):
    wheel, tgz, _ = _fake_archives(tmp_path)
    out = tmp_path / "vision"
    with pytest.raises(DataError, match="not the pinned file"):
        assets.prepare_vision(out, wheel=wheel, objectron=tgz)
    assert not out.exists()  # nothing half-written


def test_prepare_extracts_members_and_byte_ranges(tmp_path, fake_pins):
    wheel, tgz, content = fake_pins
    out = assets.prepare_vision(tmp_path / "vision", wheel=wheel, objectron=tgz)
    for name, data in content.items():
        assert (out / name).read_bytes() == data
    manifest = json.loads((out / assets.MANIFEST).read_text())
    assert manifest["license"] == "Apache-2.0"
    ssd = manifest["files"]["object_detection_ssd_mobilenetv2_oidv4_fp16.tflite"]
    assert ssd["range"] == [len(LABELS), len(LABELS) + len(FAKE_TFLITE)]
    assert ssd["sha256"] == _sha(FAKE_TFLITE)
    assert manifest["sources"]["objectron"]["package"] == "@mediapipe/objectron"
    assert (out / "objectron-package.json").is_file()
    assert assets.missing_files(out) == []
    paths = assets.vision_files(out)
    assert paths["pose_landmark_full.tflite"] == out / "pose_landmark_full.tflite"
    # idempotent: a complete folder is left alone, even when the archives are gone
    wheel.unlink()
    assert assets.prepare_vision(out, wheel=wheel, objectron=tgz) == out


def test_prepare_refuses_an_extracted_file_that_is_not_pinned(tmp_path, fake_pins, monkeypatch):
    wheel, tgz, _ = fake_pins
    bad = tuple(
        dataclasses.replace(f, sha256="0" * 64) if f.name.endswith("fp16.tflite") else f for f in assets.FILES
    )
    monkeypatch.setattr(assets, "FILES", bad)
    with pytest.raises(DataError, match="object_detection_ssd_mobilenetv2_oidv4_fp16.tflite .* has sha256"):
        assets.prepare_vision(tmp_path / "vision", wheel=wheel, objectron=tgz)


def test_missing_files_and_message(tmp_path, fake_pins):
    wheel, tgz, _ = fake_pins
    out = assets.prepare_vision(tmp_path / "vision", wheel=wheel, objectron=tgz)
    (out / "pose_detection.tflite").unlink()
    (out / "pose_landmark_full.tflite").write_bytes(b"truncated")
    assert assets.missing_files(out) == ["pose_detection.tflite", "pose_landmark_full.tflite"]
    with pytest.raises(WeightsNotFoundError, match="models fetch-vision"):
        assets.vision_files(out)


def test_packed_ranges_and_tflite_scan():
    js = '{"filename": "/a/b/model.tflite", "start": 10, "end": 99}, {"filename": "/l.txt", "start": 0, "end": 10}'
    assert assets.packed_ranges(js) == {"model.tflite": (10, 99), "l.txt": (0, 10)}
    assert assets.find_tflite(b"xx" + FAKE_TFLITE + b"yy" + FAKE_TFLITE) == [2, 2 + len(FAKE_TFLITE) + 2]


def test_registry_urls_come_from_the_registries_documents(monkeypatch):
    docs = {
        "https://pypi.org/simple/mediapipe/": {
            "files": [
                {
                    "filename": "mediapipe-0.10.21-cp312-cp312-manylinux_2_28_x86_64.whl",
                    "url": "https://x/312",
                },
                {"filename": assets.WHEEL.filename, "url": "https://files.example/mp311.whl"},
            ]
        },
        "https://registry.npmjs.org/@mediapipe%2fobjectron/0.4.1675468480": {
            "dist": {"tarball": "https://registry.example/objectron.tgz"}
        },
    }
    monkeypatch.setattr(assets, "_http_get", lambda url, **kw: json.dumps(docs[url]).encode())
    assert assets.registry_url(assets.WHEEL) == "https://files.example/mp311.whl"
    assert assets.registry_url(assets.OBJECTRON) == "https://registry.example/objectron.tgz"


@pytest.mark.skipif(not (REAL_WHEEL.is_file() and REAL_TGZ.is_file()), reason="real archives not present")
def test_real_archives_match_every_pin(tmp_path):
    out = assets.prepare_vision(tmp_path / "vision", wheel=REAL_WHEEL, objectron=REAL_TGZ)
    assert assets.missing_files(out) == []
    assert (out / "object_detection_oidv4_labelmap.txt").read_text().splitlines()[13] == "Coffee cup"
    assert (out / "object_detection_ssd_mobilenetv2_oidv4_fp16.tflite").read_bytes()[4:8] == b"TFL3"
