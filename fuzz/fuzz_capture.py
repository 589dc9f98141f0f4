"""Coverage-guided fuzzing of the capture reader and the dissectors, with atheris.

Each input is treated as a whole capture file: it is read, every packet is dissected, and
(when the streams stage is installed) its streams are reassembled and parsed. Anything but
an :class:`~osilab.errors.OsilabError` is a crash.

Run by hand for longer::

    .venv/bin/python fuzz/fuzz_capture.py -max_total_time=3600 fuzz/corpus

The test suite runs it for about 60 seconds (tests/robustness/test_fuzz.py). A crash it
finds is saved by libFuzzer as ``crash-<sha1>``; add it to ``tests/robustness/regressions/``.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["osilab"]):
    import osilab
    from osilab.errors import OsilabError

    try:
        from osilab.pipeline import annotate
    except ImportError:  # the streams stage is optional for this harness
        annotate = None

_FILE = os.path.join(tempfile.mkdtemp(prefix="osilab-fuzz-"), "input.pcap")


def test_one_input(data: bytes) -> None:
    with open(_FILE, "wb") as f:
        f.write(data)
    try:
        for pkt in osilab.read(_FILE):
            pkt.layers  # noqa: B018
            pkt.damaged  # noqa: B018
        if annotate is not None:
            for _ in annotate(osilab.read(_FILE)):
                pass
    except OsilabError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
