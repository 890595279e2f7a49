"""foleykit.utils.provenance: the CPU model and flags from /proc/cpuinfo, and the installed versions."""

from __future__ import annotations

import numpy as np

from foleykit.utils.provenance import cpu_model, describe, machine

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 fma avx512f amx_tile
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2
"""


def test_cpu_model_reads_the_first_processor_and_the_flags_that_change_kernels(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    name, flags = cpu_model(info)
    assert name == "Intel(R) Xeon(R) Platinum 8480+"
    assert flags == ["avx2", "fma", "avx512f", "amx_tile"]  # in CPU_FLAGS order; sse2 is not one of them
    missing = cpu_model(tmp_path / "absent")
    assert missing[0] and missing[1] == []  # no cpuinfo: what platform says, no flags


def test_machine_records_installed_versions_and_describes_itself():
    info = machine()
    assert info["versions"]["numpy"] == np.__version__
    assert info["versions"]["foleykit"] and info["cpu_count"] >= 1
    line = describe({**info, "cpu": "X", "cpu_flags": ["avx2"], "cpu_count": 2})
    assert line.startswith("X (avx2), 2 cores; torch ")
