"""Sound banks: indexing, decoding, attack analysis, near-duplicates, splits, and the ufoai organiser."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from foleykit.data import bank as B
from foleykit.data import ufoai as U
from foleykit.errors import DataError

SR = 16000


def burst(seed: int, *, pre: float = 0.1, dur: float = 0.3, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    """``pre`` s of silence then a decaying noise burst (attack at exactly ``pre``)."""
    rng = np.random.default_rng(seed)
    n = int(dur * sr)
    x = rng.uniform(-1, 1, n) * np.exp(-np.arange(n) / (0.05 * sr))
    x = amp * x / np.abs(x).max()
    return np.concatenate([np.zeros(int(pre * sr)), x]).astype(np.float32)


def write(path: Path, wav: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, sr, subtype="PCM_16" if path.suffix == ".wav" else None)
    return path


def tiny_bank(root: Path) -> Path:
    """footsteps/grass: 4 files (one a louder copy of another), footsteps/wood: 2, door/close: 1."""
    for i in range(3):
        write(root / "footsteps" / "grass" / f"g{i}.wav", burst(i))
    write(root / "footsteps" / "grass" / "g0_copy.wav", 1.8 * burst(0))  # same recording, other gain
    write(root / "footsteps" / "wood" / "w0.wav", burst(10, pre=0.05))
    write(root / "footsteps" / "wood" / "w1.wav", burst(11, pre=0.05, sr=44100), sr=44100)
    write(root / "door" / "close" / "c0.wav", burst(20))
    write(root / "loose.wav", burst(30))  # no category: ignored
    (root / "footsteps" / "notes.txt").write_text("not a sound")
    return root


def test_index_counts_and_durations(tmp_path):
    b = B.SoundBank(tiny_bank(tmp_path))
    assert b.categories == ["door/close", "footsteps/grass", "footsteps/wood"]
    assert b.counts() == {"door/close": 1, "footsteps/grass": 4, "footsteps/wood": 2}
    w1 = b.file("footsteps/wood/w1.wav")
    assert w1.sample_rate == 44100 and w1.channels == 1 and w1.duration == pytest.approx(0.35, abs=1e-4)
    assert [f.path for f in b.category_files("footsteps")][:2] == [
        "footsteps/grass/g0.wav",
        "footsteps/grass/g0_copy.wav",
    ]
    assert b.licenses() == {"unknown": 7}


def test_load_resamples_normalises_and_caches(tmp_path):
    b = B.SoundBank(tiny_bank(tmp_path), sample_rate=SR)
    x = b.load("footsteps/wood/w1.wav")  # stored at 44.1 kHz
    assert x.dtype == np.float32 and len(x) == pytest.approx(0.35 * SR, abs=2)
    assert b.load("footsteps/wood/w1.wav") is x  # cached
    assert float(np.abs(b.load("footsteps/grass/g1.wav", normalize=True)).max()) == pytest.approx(
        1.0, abs=1e-6
    )


def test_onset_is_the_attack(tmp_path):
    b = B.SoundBank(tiny_bank(tmp_path))
    assert b.onset("footsteps/grass/g1.wav") == pytest.approx(0.1, abs=0.003)
    assert b.onset("footsteps/wood/w1.wav") == pytest.approx(0.05, abs=0.003)  # after resampling
    a = B.analyse_sound(np.zeros(100, np.float32), SR)
    assert (a.onset, a.peak, a.peak_amplitude) == (0.0, 0.0, 0.0)
    with pytest.raises(DataError, match="mono"):
        B.analyse_sound(np.zeros((2, 100), np.float32), SR)


def test_duplicates_are_grouped(tmp_path):
    b = B.SoundBank(tiny_bank(tmp_path))
    g = b.duplicate_groups()
    assert g["footsteps/grass/g0_copy.wav"] == g["footsteps/grass/g0.wav"] == "footsteps/grass/g0.wav"
    assert len({g[f.path] for f in b.files}) == 6


def test_split_rule_disjoint_and_deterministic(tmp_path):
    b = B.SoundBank(tiny_bank(tmp_path))
    s = B.split_bank(b, seed=3)
    # grass: 3 groups -> 1/1/1 with the duplicate pair together; wood: 2 -> train + test; door: 1 -> train
    assert s.counts()["footsteps/wood"] == {"train": 1, "validation": 0, "test": 1}
    assert s.counts()["door/close"] == {"train": 1, "validation": 0, "test": 0}
    assert sorted(s.counts()["footsteps/grass"].values()) == [1, 1, 2]
    assert s.split_of("footsteps/grass/g0.wav") == s.split_of("footsteps/grass/g0_copy.wav")
    files = {k: set(s.files(k)) for k in B.SPLITS}
    assert not (
        files["train"] & files["validation"]
        or files["train"] & files["test"]
        or files["validation"] & files["test"]
    )
    assert set().union(*files.values()) == {f.path for f in b.files}
    assert B.split_bank(b, seed=3).assignment == s.assignment
    assert s.categories("validation") == ["footsteps/grass"]
    with pytest.raises(DataError, match="fractions"):
        B.split_bank(b, fractions=(0.5, 0.5, 0.5))
    with pytest.raises(DataError, match="unknown split"):
        s.files("dev")


def test_split_sizes_rule():
    f = (0.8, 0.1, 0.1)
    assert [B._split_sizes(n, f) for n in (1, 2, 3, 4, 10, 20)] == [
        (1, 0, 0),
        (1, 0, 1),
        (1, 1, 1),
        (2, 1, 1),
        (8, 1, 1),
        (16, 2, 2),
    ]
    assert B._split_sizes(5, (1.0, 0.0, 0.0)) == (5, 0, 0)


def test_bank_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        B.SoundBank(tmp_path / "nope")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no categorised sound"):
        B.SoundBank(tmp_path / "empty")
    root = tiny_bank(tmp_path / "b")
    (root / "bank.json").write_text("{not json")
    with pytest.raises(DataError, match="not a valid bank manifest"):
        B.SoundBank(root)
    (root / "bank.json").write_text(
        json.dumps(
            {"files": [{"path": "x/y.wav", "category": "x", "duration": 1, "sample_rate": SR, "channels": 1}]}
        )
    )
    with pytest.raises(DataError, match="missing"):
        B.SoundBank(root)
    with pytest.raises(DataError, match="not a file of bank"):
        B.SoundBank(tiny_bank(tmp_path / "c")).file("footsteps/grass/zzz.wav")
    with pytest.raises(DataError, match="has no file"):
        B.SoundBank(tmp_path / "c").category_files("animals")


# --- ufoai organiser ----------------------------------------------------------------------------------------
COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2002-2014, The UFO:AI Team
License: GPL-2+

Files:
 base/sound/footsteps/grass1.ogg
 base/sound/misc/breakglass01.ogg
Copyright:
 Someone
License: CC-BY-SA-3.0

Files: base/sound/doors/*
Copyright: Door Person
License: public-domain

License: GPL-2+
 full text here
"""


def test_parse_copyright_last_match_wins():
    st = U.parse_copyright(COPYRIGHT)
    assert [s.license for s in st] == ["GPL-2+", "CC-BY-SA-3.0", "public-domain"]
    assert U.license_for("base/sound/footsteps/grass1.ogg", st).license == "CC-BY-SA-3.0"
    assert U.license_for("base/sound/footsteps/grass2.ogg", st).license == "GPL-2+"
    assert U.license_for("base/sound/doors/door1-open.ogg", st).copyright == "Door Person"


def test_categorise_taxonomy():
    cases = {
        "sound/footsteps/grass1.ogg": "footsteps/grass",
        "sound/footsteps/splash3.ogg": "footsteps/water",
        "sound/footsteps/sand.ogg": "footsteps/sand",
        "sound/footsteps/hitground2.ogg": "impact/ground",
        "sound/misc/breakglass07.ogg": "break/glass",
        "sound/doors/door2-close.ogg": "door/close",
        "sound/ambience/fire05.ogg": "ambience/fire",
        "sound/weapons/grenade-bounce.ogg": "impact/metal",
        "sound/impact/knife-bodyimpact.ogg": "impact/thud",
        "sound/ambience/radiomessage.ogg": None,
        "sound/footsteps/crouch.ogg": None,
    }
    assert {k: U.categorise(k) for k in cases} == cases


def fake_package(root: Path) -> Path:
    """A `dpkg-deb -x` style folder: the pk3 (zip of ogg files) and the copyright file."""
    pk3 = root / U.PK3_PATH
    pk3.parent.mkdir(parents=True)
    with zipfile.ZipFile(pk3, "w") as z:
        for i, name in enumerate(
            [
                "footsteps/grass1.ogg",
                "footsteps/grass2.ogg",
                "misc/breakglass01.ogg",
                "doors/door1-open.ogg",
                "soldiers/malehurt01.ogg",
            ]
        ):
            buf = io.BytesIO()
            sf.write(buf, burst(i, dur=0.2, sr=22050), 22050, format="OGG")
            z.writestr(f"sound/{name}", buf.getvalue())
    cr = root / U.COPYRIGHT_PATH
    cr.parent.mkdir(parents=True)
    cr.write_text(COPYRIGHT)
    return root


def fake_deb(src: Path, deb: Path) -> Path:
    """A .deb (ar archive holding data.tar.xz) of the folder ``src``."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        tar.add(src / "usr", arcname="./usr")
    members = [(b"debian-binary", b"2.0\n"), (b"control.tar.xz", b""), (b"data.tar.xz", data.getvalue())]
    with open(deb, "wb") as fh:
        fh.write(b"!<arch>\n")
        for name, body in members:
            fh.write(
                name.ljust(16)
                + b"0".ljust(12)
                + b"0".ljust(6)
                + b"0".ljust(6)
                + b"100644".ljust(8)
                + str(len(body)).encode().ljust(10)
                + b"`\n"
            )
            fh.write(body + (b"\n" if len(body) % 2 else b""))
    return deb


def test_prepare_from_extracted_folder_is_idempotent(tmp_path):
    out = U.prepare_default_bank(tmp_path / "bank", extracted=fake_package(tmp_path / "x"))
    m = json.loads((out / "bank.json").read_text())
    by_path = {e["path"]: e for e in m["files"]}
    assert sorted(by_path) == [
        "break/glass/breakglass01.ogg",
        "door/open/door1-open.ogg",
        "footsteps/grass/grass1.ogg",
        "footsteps/grass/grass2.ogg",
    ]
    assert by_path["footsteps/grass/grass1.ogg"]["license"] == "CC-BY-SA-3.0"
    assert by_path["footsteps/grass/grass2.ogg"]["license"] == "GPL-2+"
    assert by_path["door/open/door1-open.ogg"]["source"] == "base/sound/doors/door1-open.ogg"
    assert by_path["footsteps/grass/grass1.ogg"]["onset"] == pytest.approx(0.1, abs=0.004)
    assert m["excluded"] == ["sound/soldiers/malehurt01.ogg"]
    assert (out / "copyright").read_text() == COPYRIGHT and (out / "ATTRIBUTION.txt").is_file()
    assert U.is_prepared(out)
    stamp = (out / "bank.json").stat().st_mtime_ns
    U.prepare_default_bank(out, extracted=tmp_path / "x")  # complete: left as it is
    assert (out / "bank.json").stat().st_mtime_ns == stamp
    b = B.SoundBank(out)
    assert (
        b.file("footsteps/grass/grass1.ogg").license == "CC-BY-SA-3.0"
        and b.onset("footsteps/grass/grass1.ogg") > 0.09
    )


def test_prepare_from_deb_without_dpkg(tmp_path, monkeypatch):
    deb = fake_deb(fake_package(tmp_path / "x"), tmp_path / "ufoai-sound_1.0_all.deb")
    real_which = shutil.which
    monkeypatch.setattr(U.shutil, "which", lambda name: None if name == "dpkg-deb" else real_which(name))
    out = U.prepare_default_bank(tmp_path / "bank", deb=deb)
    assert B.SoundBank(out).counts() == {"break/glass": 1, "door/open": 1, "footsteps/grass": 2}


def test_prepare_errors(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="does not exist"):
        U.prepare_default_bank(tmp_path / "b", extracted=tmp_path / "missing")
    (tmp_path / "junk").mkdir()
    with pytest.raises(DataError, match="holds neither"):
        U.prepare_default_bank(tmp_path / "b", extracted=tmp_path / "junk")
    pkg = fake_package(tmp_path / "x")
    (pkg / U.COPYRIGHT_PATH).unlink()
    with pytest.raises(DataError, match="copyright file"):
        U.prepare_default_bank(tmp_path / "b", extracted=pkg)
    bad = tmp_path / "bad.deb"
    bad.write_bytes(b"not an archive")
    monkeypatch.setattr(U.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="not a Debian package"):
        U.prepare_default_bank(tmp_path / "b", deb=bad)
    monkeypatch.setenv("FOLEYKIT_HOME", str(tmp_path / "home"))
    with pytest.raises(DataError, match="apt-get is not available"):  # which() finds nothing: no apt-get call
        U.prepare_default_bank(tmp_path / "b")
    assert not (tmp_path / "b").exists()
