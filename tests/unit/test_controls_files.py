"""Control files: CSV/JSON round trips, spreadsheet edits, and every malformed-file error."""

import json

import numpy as np
import pytest

from foleykit.controls import TemporalControl, load_control
from foleykit.controls.files import clamp_to_range, keyframe_note
from foleykit.errors import ControlError


def make(kind="energy", rate=100.0, n=50, start=0.0, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "rms_class":
        values = rng.integers(0, 64, n)
    elif kind == "onsets":
        values = (rng.random(n) < 0.2).astype(np.float32)
    else:
        values = rng.normal(-5, 2, n).astype(np.float32)
    return TemporalControl(kind, values, rate, start)


@pytest.mark.parametrize("suffix", [".csv", ".json"])
@pytest.mark.parametrize(
    "kind,rate,start",
    [
        ("energy", 100.0, 0.0),
        ("rms", 125.0, 0.0),
        ("rms_class", 125.0, 0.0),
        ("onsets", 25.0, 0.0),
        ("motion", 30.0, 1.5),
        ("motion", 30000 / 1001, 0.0),
        ("rms", 44100 / 512, 0.0),
        ("energy", 8.0, 2.25),
    ],
)
def test_round_trip_is_exact(tmp_path, suffix, kind, rate, start):
    c = make(kind, rate, n=400, start=start)
    path = c.save(tmp_path / f"c{suffix}")
    back = TemporalControl.load(path)
    assert back.kind == kind and back.num_frames == 400
    assert back.rate == pytest.approx(rate, rel=1e-9) and back.start == pytest.approx(start, abs=1e-9)
    np.testing.assert_array_equal(back.values, c.values)  # bit-exact float32 / int64
    assert back.values.dtype == c.values.dtype
    assert [p.name for p in tmp_path.iterdir()] == [f"c{suffix}"]  # no temporary file left


def test_simple_rates_are_recovered_exactly_from_csv(tmp_path):
    for rate in (100.0, 125.0, 25.0, 30.0, 30000 / 1001):
        back = TemporalControl.load(make(rate=rate, n=300).save(tmp_path / "c.csv"))
        assert back.rate == rate


def test_csv_layout_is_spreadsheet_friendly(tmp_path):
    c = TemporalControl("energy", [-11.512925, 0.5, 0.25], 100)
    text = c.save(tmp_path / "e.csv").read_text()
    assert text == "time,energy\n0.0,-11.512925\n0.01,0.5\n0.02,0.25\n"


def test_json_keeps_meta_and_converts_numpy(tmp_path):
    c = TemporalControl(
        "rms", [0.1, 0.2], 125, 0.5, meta={"n": np.int64(3), "arr": np.arange(2), "src": tmp_path}
    )
    path = c.save(tmp_path / "r.json")
    doc = json.loads(path.read_text())
    assert set(doc) == {"kind", "rate", "start", "values", "meta"}
    assert doc["values"] == [0.1, 0.2] and doc["meta"] == {"n": 3, "arr": [0, 1], "src": str(tmp_path)}
    back = load_control(path)
    assert back.meta["n"] == 3 and back.start == 0.5


def test_spreadsheet_edits_are_accepted(tmp_path):
    c = make(rate=30.0, n=90)
    path = c.save(tmp_path / "c.csv")
    # the designer's spreadsheet rewrites every number with fewer decimals and edits a few values
    rows = [f"{t:.4f},{v:.2f}" for t, v in zip(c.times, c.values)]
    rows[10] = f"{c.times[10]:.4f},3"
    path.write_text("time,energy\n" + "\n".join(rows) + "\n")
    back = load_control(path)
    assert back.rate == 30.0 and back.num_frames == 90 and back.start == 0.0
    expected = np.round(c.values.astype(np.float64), 2).astype(np.float32)
    expected[10] = 3.0
    np.testing.assert_allclose(back.values, expected, atol=1e-6)


def test_locale_csv_with_semicolons_decimal_commas_bom_crlf(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(
        "\ufefftime;rms;;\r\n0,000;0,5;;\r\n0,008;0,25;;\r\n0,016;0,125;;\r\n\r\n".encode("utf-8")
    )
    back = load_control(path)
    assert back.kind == "rms" and back.rate == 125.0
    np.testing.assert_allclose(back.values, [0.5, 0.25, 0.125])


@pytest.mark.parametrize(
    "text,match",
    [
        ("0.0,1\n0.01,2\n0.02,3\n", r"line 1: expected a header 'time,<kind>'.*header line is missing"),
        ("time,energy,extra\n0.0,1,2\n0.01,2,3\n", r"line 1: .*exactly two columns"),
        ("seconds,energy\n0.0,1\n0.01,2\n", r"line 1: expected a header"),
        ("time,energy\n0.0,1\n0.01,loud\n0.02,3\n", r"line 3, column 2 \(energy\): 'loud' is not a number"),
        ("time,energy\n0.0,1\n0.01,\n0.02,3\n", r"line 3, column 2 \(energy\): '' is not a number"),
        ("time,energy\n0.0,1\nabc,2\n0.02,3\n", r"line 3, column 1 \(time\): 'abc' is not a number"),
        (
            "time,energy\n0.0,1\n0.01,nan\n0.02,3\n",
            r"line 3, column 2 \(energy\): 'nan' is not a finite number",
        ),
        ("time,energy\n0.0,1\n0.01\n0.02,3\n", r"line 3: expected 2 cells"),
        ("time,energy\n0.0,1\n0.02,2\n0.01,3\n", r"line 4: time 0.01 is not after the previous row's 0.02"),
        ("time,energy\n0.0,1\n0.0,2\n0.01,3\n", r"line 3: .*times must increase"),
        ("time,energy\n", r"need at least two data rows"),
        ("time,energy\n0.0,1\n", r"need at least two data rows"),
        ("time,rms\n0.0,1\n0.0,2\n", r"not after"),
        ("time,rms_class\n0.0,1\n0.008,2.5\n0.016,3\n", r"line 3: rms_class holds class indices, 2.5"),
        ("time,rms_class\n0.0,1\n0.008,-2\n0.016,3\n", r">= 0"),
        ("time,a b\n0.0,1\n0.01,2\n", r"kind"),
        ("time,energy\n0,1\n0,2\n0,3\n", r"not after"),
    ],
)
def test_malformed_csv(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ControlError, match=match) as info:
        load_control(path)
    assert str(path) in str(info.value)


def test_few_decimals_are_fine_when_exact(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("time,rms\n0,1\n0.01,2\n0.02,3\n")
    assert load_control(path).rate == 100.0
    path.write_text("time,rms\n1,1\n2,2\n3,3\n")
    c = load_control(path)
    assert (c.rate, c.start) == (1.0, 1.0)


def test_rounded_time_column_too_coarse(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("time,rms\n0.0,1\n0.0,2\n0.0,3\n0.0,4\n")  # 125 Hz rounded to one decimal: all 0.0
    with pytest.raises(ControlError, match="restore more decimals"):
        load_control(path)
    path.write_text("time,rms\n0,1\n0.01,2\n0.02,3\n0.02,4\n0.03,5\n")  # 125 Hz at 2 decimals
    with pytest.raises(ControlError, match="line 5: .*restore more decimals"):
        load_control(path)
    path.write_text("time,rms\n0.0,1\n0.1,2\n0.3,3\n0.4,4\n0.5,5\n")  # 8 Hz rounded to 1 decimal
    with pytest.raises(ControlError, match="line 4: .*breaks.*only 1 decimal"):
        load_control(path)


@pytest.mark.parametrize(
    "doc,match",
    [
        ('{"kind": "energy", "rate": 100, "values": [1, 2', r"line 1, column \d+: invalid JSON"),
        ("[1, 2, 3]", r"expected a JSON object"),
        ('{"kind": "energy", "values": [1]}', r"missing key\(s\) rate"),
        ('{"rate": 100}', r"missing key\(s\) kind, values"),
        ('{"kind": 3, "rate": 100, "values": [1]}', r"'kind' must be a string"),
        ('{"kind": "energy", "rate": "fast", "values": [1]}', r"'rate' must be a finite number"),
        ('{"kind": "energy", "rate": 100, "start": null, "values": [1]}', r"'start' must be a finite number"),
        ('{"kind": "energy", "rate": -1, "values": [1]}', r"positive"),
        ('{"kind": "energy", "rate": 100, "values": []}', r"non-empty list"),
        ('{"kind": "energy", "rate": 100, "values": {"a": 1}}', r"non-empty list"),
        ('{"kind": "energy", "rate": 100, "values": [1, "x"]}', r"values\[1\] is 'x', not a number"),
        ('{"kind": "energy", "rate": 100, "values": [1, NaN]}', r"values\[1\] is nan"),
        ('{"kind": "energy", "rate": 100, "values": [1, true]}', r"values\[1\] is True"),
        ('{"kind": "energy", "rate": 100, "values": [1], "meta": [1]}', r"'meta' must be an object"),
        ('{"kind": "rms_class", "rate": 100, "values": [1.5]}', r"class indices"),
    ],
)
def test_malformed_json(tmp_path, doc, match):
    path = tmp_path / "bad.json"
    path.write_text(doc)
    with pytest.raises(ControlError, match=match) as info:
        load_control(path)
    assert str(path) in str(info.value)


def test_file_level_errors(tmp_path):
    with pytest.raises(ControlError, match="not found"):
        load_control(tmp_path / "missing.csv")
    with pytest.raises(ControlError, match=r"must end in \.csv or \.json"):
        load_control(tmp_path / "c.txt")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ControlError, match="empty.*header line"):
        load_control(tmp_path / "empty.csv")
    (tmp_path / "empty.json").write_text("  \n")
    with pytest.raises(ControlError, match="empty.*JSON object"):
        load_control(tmp_path / "empty.json")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(ControlError, match="not a text file"):
        load_control(tmp_path / "bin.csv")
    c = make()
    with pytest.raises(ControlError, match="must end in"):
        c.save(tmp_path / "out.xlsx")
    assert not (tmp_path / "out.xlsx").exists()


def test_keyframes_at_uneven_times_are_interpolated(tmp_path):
    path = tmp_path / "keys.csv"
    path.write_text("time,rms\n0.5,0.1\n1.0,0.5\n1.3,0.2\n2.5,0.2\n")
    c = load_control(path)
    assert (c.rate, c.start, c.num_frames, c.meta["keyframes"]) == (100.0, 0.5, 201, 4)
    np.testing.assert_allclose(
        c.values[[0, 50, 80, 200]], [0.1, 0.5, 0.2, 0.2], atol=1e-6
    )  # through the keys
    np.testing.assert_allclose(c.values[25], 0.3, atol=1e-6)  # linear between them
    assert keyframe_note(c, "timing.csv") == [
        "timing.csv has 4 keyframes at uneven times: drawn at 100 Hz (linear between keyframes)"
    ]
    path.write_text("time,energy\n0.000,1\n0.010,2\n0.020,3\n0.040,5\n0.050,6\n")  # a missing row: filled in
    c = load_control(path)
    np.testing.assert_allclose(c.values, [1, 2, 3, 4, 5, 6], atol=1e-6)
    assert c.rate == 100.0 and c.meta["keyframes"] == 5
    path.write_text("time,rms_class\n0,3\n0.25,7\n1,2\n")  # classes are held, not averaged
    c = load_control(path)
    assert c.values.dtype == np.int64 and c.values[[0, 24, 25, 99, 100]].tolist() == [3, 3, 7, 7, 2]
    path.write_text("time,onsets\n0.1,1\n0.47,1\n0.9,0.5\n")  # events land on their own frames
    c = load_control(path)
    assert np.flatnonzero(c.values).tolist() == [0, 37, 80] and c.values[80] == 0.5
    assert keyframe_note(load_control(tmp_path / "keys.csv"), "x") and not keyframe_note(
        c.replace(meta={}), "x"
    )


def test_values_outside_the_kinds_range_are_clamped_with_a_note():
    c = TemporalControl("rms", np.array([0.2, 5.0, 0.4, -0.1], np.float32), 100.0, 1.0)
    fixed, notes = clamp_to_range(c, "control file t.csv")
    assert fixed.values.tolist() == pytest.approx([0.2, 1.0, 0.4, 0.0])
    assert notes == [
        (
            "control file t.csv: 2 of 4 rms values lie outside 0..1 (from -0.1 to 5, first at 1.01 s); they "
            "were clamped to that range"
        )
    ]
    ok = TemporalControl("rms", np.array([0.0, 1.0], np.float32), 100.0)
    assert clamp_to_range(ok, "x") == (ok, [])
    energy = TemporalControl("energy", np.array([-20.0, 3.0]), 100.0)
    assert clamp_to_range(energy, "x")[0].values[0] == pytest.approx(np.log(1e-5))
    cls = TemporalControl("rms_class", np.array([0, 70]), 125.0, meta={"n_classes": 64})
    assert clamp_to_range(cls, "x")[0].values.tolist() == [0, 63]
    other = TemporalControl("custom", np.array([1e6, -1e6]), 10.0)
    assert clamp_to_range(other, "x")[1] == []  # kinds without a known range are left alone
