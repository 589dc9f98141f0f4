"""The command line's progress bars: see :mod:`osilab._progress` (shared with the library)."""

from osilab._progress import (
    THRESHOLD_BYTES,
    ByteBar,
    attach,
    file_size,
    library_bar,
    notebook_progress,
    progress,
    should_show,
)

__all__ = [
    "progress",
    "notebook_progress",
    "should_show",
    "file_size",
    "ByteBar",
    "attach",
    "library_bar",
    "THRESHOLD_BYTES",
]
