"""Tux Paint stamps (Debian ``tuxpaint-stamps-default``, GPL-2): photo cut-outs and their own sounds.

The package holds ~800 PNG stamps with alpha under ``usr/share/tuxpaint/stamps/<topic>/...``; many are
real-photo cut-outs (animals, tools, food, instruments, vehicles), others drawn clip-art. About a hundred
stamps carry their own recorded sound ``<stamp>.ogg`` (the ``<stamp>_desc_<lang>.ogg`` files are spoken
descriptions and are never used). This module knows:

- ``STAMP_SOUNDS``: the stamps whose sound is a Foley-like recording, each with a bank category
  (``animal/bird``, ``animal/mammal``, ``animal/insect``, ``music/percussion``, ``tool/hand``,
  ``household/glass``, ``household/appliance`` ...) and a caption of what is shown and heard ("a dog
  barks"). Spoken, sung or unclear sounds (dreidel letters, Santa's laugh, the Apollo radio call, a ghost,
  school crossings) are left out.
- ``is_photo``: a cheap test that tells a photo cut-out from flat clip-art (share of flat pixels).
- ``add_stamp_sounds``: copy the sounds into a bank folder with bank.json entries (licence GPL-2,
  source path, category, caption, and the stamp picture that goes with the sound).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from foleykit.errors import DataError

PACKAGE = "tuxpaint-stamps-default"
STAMPS_PATH = "usr/share/tuxpaint/stamps"
COPYRIGHT_PATH = f"usr/share/doc/{PACKAGE}/copyright"
LICENSE = "GPL-2"
ATTRIBUTION = (
    "Photo cut-outs and their sounds from Tux Paint Stamps (https://tuxpaint.org), (c) 2002-2022 Bill Kendrick "
    "and the Tux Paint contributors, GPL-2, as packaged by Debian (tuxpaint-stamps-default)."
)
#: Topic folders never used (letters, maths and symbols are not photos of things that sound).
SKIP_TOPICS = ("symbols",)

#: stamp path (under stamps/, no extension) -> (bank category, caption of the picture + sound).
STAMP_SOUNDS: dict[str, tuple[str, str]] = {
    # birds
    "animals/birds/blackbird": ("animal/bird", "a blackbird sings"),
    "animals/birds/crow": ("animal/bird", "a crow caws"),
    "animals/birds/cuckoo": ("animal/bird", "a cuckoo calls"),
    "animals/birds/drake": ("animal/bird", "a drake quacks"),
    "animals/birds/duck": ("animal/bird", "a duck quacks"),
    "animals/birds/gander": ("animal/bird", "a goose honks"),
    "animals/birds/hen": ("animal/bird", "a hen clucks"),
    "animals/birds/heron_greatblue_flying": ("animal/bird", "a heron calls"),
    "animals/birds/lark": ("animal/bird", "a lark sings"),
    "animals/birds/nandou": ("animal/bird", "a rhea calls"),
    "animals/birds/owl": ("animal/bird", "an owl hoots"),
    "animals/birds/penguin": ("animal/bird", "a penguin calls"),
    "animals/birds/quetzal": ("animal/bird", "a quetzal calls"),
    "animals/birds/rooster": ("animal/bird", "a rooster crows"),
    "animals/birds/seagull": ("animal/bird", "a seagull cries"),
    "animals/birds/tucan": ("animal/bird", "a toucan calls"),
    "animals/birds/turkey": ("animal/bird", "a turkey gobbles"),
    "animals/birds/vulture": ("animal/bird", "a vulture screeches"),
    # insects, frogs, lizards
    "animals/insects/bee": ("animal/insect", "a bee buzzes"),
    "animals/insects/grasshopper": ("animal/insect", "a grasshopper chirps"),
    "animals/insects/hornet": ("animal/insect", "a hornet buzzes"),
    "animals/insects/mosquito": ("animal/insect", "a mosquito whines"),
    "animals/insects/xanthia": ("animal/insect", "a moth flutters"),
    "animals/amphibians/frog": ("animal/frog_lizard", "a frog croaks"),
    "animals/lizards/iguana": ("animal/frog_lizard", "an iguana hisses"),
    # mammals
    "animals/mammals/apes/chimp": ("animal/mammal", "a chimpanzee screams"),
    "animals/mammals/apes/gorilla": ("animal/mammal", "a gorilla grunts"),
    "animals/mammals/aquatic/dolphin": ("animal/mammal", "a dolphin clicks and whistles"),
    "animals/mammals/aquatic/orca": ("animal/mammal", "an orca calls"),
    "animals/mammals/aquatic/sea_lion": ("animal/mammal", "a sea lion barks"),
    "animals/mammals/aquatic/whale": ("animal/mammal", "a whale sings"),
    "animals/mammals/badger": ("animal/mammal", "a badger growls"),
    "animals/mammals/bears/bear": ("animal/mammal", "a bear growls"),
    "animals/mammals/bovines/bison": ("animal/mammal", "a bison grunts"),
    "animals/mammals/bovines/bull": ("animal/mammal", "a bull bellows"),
    "animals/mammals/bovines/cow": ("animal/mammal", "a cow moos"),
    "animals/mammals/bovines/cow_white": ("animal/mammal", "a cow moos"),
    "animals/mammals/bovines/goat": ("animal/mammal", "a goat bleats"),
    "animals/mammals/bovines/mountaingoat": ("animal/mammal", "a mountain goat bleats"),
    "animals/mammals/bovines/ram": ("animal/mammal", "a ram bleats"),
    "animals/mammals/bovines/sheep": ("animal/mammal", "a sheep bleats"),
    "animals/mammals/bovines/sheep_lamb": ("animal/mammal", "a lamb bleats"),
    "animals/mammals/camel/camel": ("animal/mammal", "a camel grunts"),
    "animals/mammals/camel/dromedary": ("animal/mammal", "a dromedary grumbles"),
    "animals/mammals/cats/lion": ("animal/mammal", "a lion roars"),
    "animals/mammals/cats/tiger": ("animal/mammal", "a tiger growls"),
    "animals/mammals/deer/caribou": ("animal/mammal", "a caribou grunts"),
    "animals/mammals/deer/deer": ("animal/mammal", "a deer calls"),
    "animals/mammals/deer/doe": ("animal/mammal", "a doe bleats"),
    "animals/mammals/dogs/dog": ("animal/mammal", "a dog barks"),
    "animals/mammals/dogs/fox": ("animal/mammal", "a fox barks"),
    "animals/mammals/elephant": ("animal/mammal", "an elephant trumpets"),
    "animals/mammals/equines/donkey": ("animal/mammal", "a donkey brays"),
    "animals/mammals/equines/horse": ("animal/mammal", "a horse neighs"),
    "animals/mammals/equines/zebra": ("animal/mammal", "a zebra calls"),
    "animals/mammals/ferret": ("animal/mammal", "a ferret chatters"),
    "animals/mammals/giraffe": ("animal/mammal", "a giraffe snorts"),
    "animals/mammals/hippopotamus": ("animal/mammal", "a hippopotamus grunts"),
    "animals/mammals/pig": ("animal/mammal", "a pig oinks"),
    "animals/mammals/pig_golden": ("animal/mammal", "a pig grunts"),
    "animals/mammals/pig_golden2": ("animal/mammal", "a pig squeals"),
    "animals/mammals/rodents/beaver": ("animal/mammal", "a beaver gnaws"),
    "animals/mammals/rodents/mouse": ("animal/mammal", "a mouse squeaks"),
    "animals/mammals/rodents/rabbit": ("animal/mammal", "a rabbit thumps and squeaks"),
    "animals/mammals/rodents/squirrel": ("animal/mammal", "a squirrel chatters"),
    "animals/marsupials/koala": ("animal/mammal", "a koala bellows"),
    "animals/marsupials/wombat": ("animal/mammal", "a wombat grunts"),
    "seasonal/halloween/bat_left": ("animal/mammal", "a bat squeaks"),
    "seasonal/halloween/blackcat": ("animal/mammal", "a cat meows"),
    # music
    "hobbies/music/percussion/cymbal_crash": ("music/percussion", "a crash cymbal is struck"),
    "hobbies/music/percussion/drum_tomtom_floor": ("music/percussion", "a floor tom drum is hit"),
    "hobbies/music/percussion/drumkit": ("music/percussion", "a drum kit is played"),
    "hobbies/music/string/cello": ("music/instrument", "a cello plays"),
    "hobbies/music/string/violin": ("music/instrument", "a violin plays"),
    "hobbies/music/wind/bassoon": ("music/instrument", "a bassoon plays"),
    "military/final-roll-call": ("music/instrument", "a bugle plays"),
    # tools and household
    "household/tools/hammer": ("tool/hand", "a hammer strikes"),
    "household/tools/mallet_metal": ("tool/hand", "a mallet strikes"),
    "household/tools/saw": ("tool/hand", "a saw cuts"),
    "household/arttools/scissors_small_closed": ("tool/hand", "scissors snip"),
    "household/arttools/scissors_small_open": ("tool/hand", "scissors snip"),
    "household/dishes/bottle": ("household/glass", "a glass bottle clinks"),
    "household/dishes/glass": ("household/glass", "a drinking glass clinks"),
    "household/Washing-machine": ("household/appliance", "a washing machine runs"),
    "household/vacuum_cleaner": ("household/appliance", "a vacuum cleaner whirs"),
    "household/kettle": ("household/appliance", "a kettle clicks and boils"),
    "household/toilet": ("household/appliance", "a toilet flushes"),
    "hobbies/camera_35mm": ("household/appliance", "a camera shutter clicks"),
    "household/rubberduck": ("household/object", "a rubber duck squeaks"),
    "seasonal/christmas/gift": ("household/object", "wrapping paper rustles"),
    "food/fruit/apple_red": ("household/object", "someone bites into an apple"),
    # vehicles and bangs
    "vehicles/emergency/firetruck": ("vehicle/road", "a fire truck siren wails"),
    "town/flags/checkeredflag": ("vehicle/road", "a race car speeds past"),
    "town/roadsigns/no_uturn": ("vehicle/road", "a car horn honks"),
    "town/roadsigns/xing_ped": ("vehicle/road", "a crossing signal beeps"),
    "seasonal/newyears/fireworks": ("explosion/bang", "fireworks explode"),
    "naturalforces/lightningbolt": ("explosion/bang", "lightning strikes with a thunderclap"),
}


def stamp_noun(stamp_dir: Path, rel: str) -> str:
    """What a stamp shows, in words: the first line of ``<stamp>.txt`` ("A red apple." -> "a red apple")
    when it is short, else the file name ("apple_red" -> "apple red")."""
    txt = stamp_dir / f"{rel}.txt"
    if txt.is_file():
        try:
            first = txt.read_text(encoding="utf-8", errors="replace").splitlines()[0].strip().rstrip(".!")
        except IndexError:
            first = ""
        if first and len(first.split()) <= 5 and "=" not in first:
            return first[0].lower() + first[1:]
    import re

    name = re.sub(r"_mirror$", "", Path(rel).name)
    words = re.sub(r"[\s_-]*\d+$", "", name).replace("_", " ").replace("-", " ").lower()
    return words or Path(rel).name


def photo_score(rgba: np.ndarray) -> tuple[float, int]:
    """(share of flat pixels, number of opaque pixels) of a stamp picture.

    Flat pixels are opaque pixels (alpha >= 128, eroded by 2 px) whose Laplacian magnitude is < 1 grey
    level on a copy scaled to <= 256 px: drawn clip-art is made of flat fills (share ~0.2-1), photo
    cut-outs are textured everywhere (share < 0.12).

    Args:
        rgba: ``uint8 (H, W, 4)`` (or ``(H, W, 3)``, taken as opaque).
    """
    import cv2

    rgb = rgba[..., :3]
    alpha = rgba[..., 3] if rgba.shape[-1] == 4 else np.full(rgba.shape[:2], 255, np.uint8)
    s = 256.0 / max(rgb.shape[:2])
    if s < 1:
        size = (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    mask = cv2.erode((alpha >= 128).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    n = int(mask.sum())
    if n == 0:
        return 1.0, 0
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = np.abs(cv2.Laplacian(grey, cv2.CV_32F))[mask]
    return float((lap < 1.0).mean()), n


#: A stamp is used as a photo cut-out when its flat share is below this and it has enough opaque pixels.
PHOTO_FLAT_MAX = 0.12
PHOTO_MIN_PIXELS = 400
PHOTO_MIN_SIDE = 64


def is_photo(rgba: np.ndarray) -> bool:
    """True when a stamp picture looks like a photo cut-out (see ``photo_score``)."""
    if max(rgba.shape[:2]) < PHOTO_MIN_SIDE or rgba.ndim != 3 or rgba.shape[-1] != 4:
        return False
    flat, n = photo_score(rgba)
    return flat < PHOTO_FLAT_MAX and n >= PHOTO_MIN_PIXELS


def locate_stamps(extracted: Path) -> tuple[Path, Path]:
    """(stamps folder, copyright file) inside a ``dpkg-deb -x`` folder of the package."""
    stamps = extracted / STAMPS_PATH
    if not stamps.is_dir() and (extracted / "animals").is_dir():
        stamps = extracted  # the stamps folder itself
    if not stamps.is_dir():
        raise DataError(f"{extracted} holds no {STAMPS_PATH} folder (a `dpkg-deb -x` folder of {PACKAGE})")
    for c in (extracted / COPYRIGHT_PATH, extracted / "copyright", stamps / "copyright"):
        if c.is_file():
            return stamps, c
    raise DataError(
        f"the Debian copyright file of {PACKAGE} was not found in {extracted} (looked for {COPYRIGHT_PATH}); "
        "the licence must travel with the stamps, so pass the .deb or its dpkg-deb -x folder"
    )


def obtain_package(
    package: str, *, deb: str | os.PathLike | None, extracted: str | os.PathLike | None, work: Path
) -> Path:
    """A ``dpkg-deb -x`` folder of ``package``: ``extracted`` as given, else ``deb`` (or ``apt-get download``
    into ``$FOLEYKIT_HOME/downloads``) extracted under ``work``."""
    from foleykit.data.ufoai import _extract_deb, download_deb
    from foleykit.paths import foleykit_home

    if extracted is not None:
        root = Path(extracted).expanduser()
        if not root.exists():
            raise DataError(f"{root} does not exist (extracted {package})")
        return root
    deb_path = (
        Path(deb).expanduser()
        if deb is not None
        else download_deb(foleykit_home() / "downloads", package=package)
    )
    if not deb_path.is_file():
        raise DataError(f"{deb_path} does not exist ({package} .deb)")
    root = work / package
    root.mkdir(parents=True, exist_ok=True)
    _extract_deb(deb_path, root)
    return root


def add_stamp_sounds(stamps: Path, copyright_file: Path, dest: Path) -> list[dict[str, Any]]:
    """Copy the stamps' own sounds into bank folder ``dest`` as ``<category>/<name>.ogg``.

    Returns:
        bank.json entries (path, category, source, licence, copyright, caption, stamp picture when one
        exists) for the sounds found; stamps missing from the package are skipped.
    """
    entries = []
    for rel, (category, caption) in sorted(STAMP_SOUNDS.items()):
        src = stamps / f"{rel}.ogg"
        if not src.is_file():
            continue
        name = Path(rel).name
        out = dest / category / f"{name}.ogg"
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)
        png = stamps / f"{rel}.png"
        entries.append(
            {
                "path": f"{category}/{name}.ogg",
                "category": category,
                "source": f"{PACKAGE}:{STAMPS_PATH}/{rel}.ogg",
                "license": LICENSE,
                "copyright": "2002-2022 Bill Kendrick and Tux Paint contributors",
                "caption": caption,
                "stamp": rel if png.is_file() else None,
            }
        )
    shutil.copyfile(copyright_file, dest / f"copyright.{PACKAGE}")
    return entries


def add_stamps_to_bank(bank_dir: str | os.PathLike, extracted: str | os.PathLike) -> int:
    """Add the stamps' own sounds to an existing bank folder (any bank with a ``bank.json``), analysed
    like the default bank's files; ``bank.json`` is rewritten atomically. Files already listed stay.

    Args:
        bank_dir: The bank folder.
        extracted: A ``dpkg-deb -x`` folder of ``tuxpaint-stamps-default`` (or its stamps folder with a
            ``copyright`` file).

    Returns:
        The number of sounds added.
    """
    import json

    import soundfile as sf

    from foleykit.data.bank import _read_mono, analyse_sound
    from foleykit.utils.io import atomic_write_json

    bank_dir = Path(bank_dir)
    manifest = bank_dir / "bank.json"
    if not manifest.is_file():
        raise DataError(f"{bank_dir} has no bank.json; prepare the bank first (`foleykit data prepare-bank`)")
    data = json.loads(manifest.read_text(encoding="utf-8"))
    known = {e["path"] for e in data["files"]}
    stamps, copyright_file = locate_stamps(Path(extracted))
    new = [e for e in add_stamp_sounds(stamps, copyright_file, bank_dir) if e["path"] not in known]
    rate = int(data.get("analysis_sample_rate") or 16000)

    for e in new:
        info = sf.info(str(bank_dir / e["path"]))
        x, sr = _read_mono(bank_dir / e["path"])
        if sr != rate:
            import librosa

            x = librosa.resample(x, orig_sr=sr, target_sr=rate)
        a = analyse_sound(x, rate)
        e.update(duration=round(info.frames / info.samplerate, 6), sample_rate=int(info.samplerate),
                 channels=int(info.channels), group=e["path"], onset=round(a.onset, 6), peak=round(a.peak, 6),
                 peak_amplitude=round(a.peak_amplitude, 6), rms=round(a.rms, 6))  # fmt: skip
    data["files"] = data["files"] + new
    data["packages"] = sorted(set(data.get("packages", [])) | {PACKAGE})
    if ATTRIBUTION not in str(data.get("attribution", "")):
        data["attribution"] = f"{data.get('attribution', '')}\n{ATTRIBUTION}".strip()
    atomic_write_json(manifest, data)
    return len(new)
