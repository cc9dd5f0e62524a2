"""Every minimised crashing input found by tools/fuzz.py: each must load or raise
BeamError (never another exception), within the fuzzer's time and memory limits, and
the command line must print one error line for it."""

from __future__ import annotations

import glob
import os
import sys


from corpus import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import fuzz  # noqa: E402

REGRESSION_FILES = sorted(glob.glob(os.path.join(ROOT, "tests", "regressions", "*.beam")))


def test_there_are_regressions():
    assert REGRESSION_FILES


def test_regressions_under_limits():
    mutants = []
    for path in REGRESSION_FILES:
        with open(path, "rb") as f:
            mutants.append(fuzz.Mutant(path, os.path.basename(path), f.read(), 0))
    report = fuzz.run_inputs(mutants, workers=1)
    assert report.tried == len(REGRESSION_FILES)
    assert not report.crashes, report.text()
