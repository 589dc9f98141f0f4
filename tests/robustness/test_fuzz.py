"""Run the atheris fuzzing harness for a bounded time and report how many inputs ran.

The seed corpus is the third-party captures (copied into a temporary folder that libFuzzer may
add to; the shared originals are never touched). ``OSILAB_FUZZ_SECONDS`` sets the budget
(default 60 s, as CI runs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from shared_paths import REPO, thirdparty_captures

REGRESSIONS = Path(__file__).parent / "regressions"


def test_fuzz_harness_runs_without_crashes(tmp_path, thirdparty):
    pytest.importorskip("atheris", reason="atheris is the optional 'fuzz' extra (make test installs it)")
    seconds = int(os.environ.get("OSILAB_FUZZ_SECONDS", "60"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in thirdparty_captures():
        if path.stat().st_size <= 20_000:
            shutil.copy(path, corpus / path.name)
    out = subprocess.run(
        [sys.executable, str(REPO / "fuzz" / "fuzz_capture.py"), f"-max_total_time={seconds}",
         "-rss_limit_mb=2048", "-max_len=20000", f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=seconds + 120)
    log = out.stdout + out.stderr
    runs = re.findall(r"#(\d+)\s+(?:DONE|pulse|NEW|REDUCE|INITED)", log)
    done = re.search(r"Done (\d+) runs", log)
    count = int(done.group(1)) if done else (int(runs[-1]) if runs else 0)
    print(f"\nmeasured: fuzz: {count} inputs in {seconds} s")
    crashes = list(tmp_path.glob("crash-*"))
    assert out.returncode == 0 and not crashes, log[-3000:]
    assert count > 100


def test_saved_fuzz_regressions_stay_fixed():
    """Each input the fuzzer once crashed or hung on now reads to the end, quickly."""
    cases = sorted(REGRESSIONS.glob("*.bin"))
    assert cases, "the regression folder holds the fuzzer's past findings"
    script = ("import sys, osilab\n"
              "from osilab.errors import OsilabError\n"
              "try:\n"
              "    cap = osilab.read(sys.argv[1])\n"
              "    n = sum(1 for p in cap if p.layers is not None)\n"
              "    print(n, len(cap.errors))\n"
              "except OsilabError as e:\n"
              "    print('error', e)\n")
    for case in cases:
        out = subprocess.run([sys.executable, "-c", script, str(case)], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0 and "Traceback" not in out.stderr, (case.name, out.stderr)
