"""What every figure shares: creation without pyplot, saving with fixed metadata, colours.

The same data gives the same bytes: PNG, SVG and PDF are written without dates or
version strings, and SVG element ids come from a fixed salt.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg", force=False)

from matplotlib.figure import Figure  # noqa: E402

from ..errors import UsageError  # noqa: E402
from . import SUFFIXES, check_output_path  # noqa: E402,F401  (re-exported)

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

_METADATA = {
    ".png": {"Software": None},
    ".svg": {"Date": None, "Creator": None},
    ".pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
}
RC: dict[RcKeyType, Any] = {
    "svg.hashsalt": "xp",
    "svg.fonttype": "none",
    "pdf.compression": 6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "font.size": 9,
    "axes.titlesize": 10,
    "legend.fontsize": 8,
    "legend.frameon": False,
}
#: A colour-blind-safe palette (Okabe-Ito) for categories; highlights use the reds.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#56B4E9", "#CC79A7", "#D55E00", "#F0E442",
           "#000000")
HIGHLIGHT = ("#d62728", "#1f1f9f", "#ff7f0e", "#2ca02c")


def new_figure(width: float, height: float) -> Figure:
    """A Figure with xp's style, outside pyplot (no global state, safe in threads)."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def style() -> Any:
    """Context manager applying xp's rcParams while drawing (``with style(): ...``)."""
    return matplotlib.rc_context(RC)


def save_figure(fig: Figure, path: str, dpi: int = 150, only_if_changed: bool = False) -> str:
    """Save ``fig`` to ``path`` (format from the suffix), reproducibly and atomically;
    return the path.

    The figure is written beside ``path`` under a hidden name, then renamed over it, so a
    viewer (or ``--watch``, which rewrites it) never sees half a file. With
    ``only_if_changed``, a file that already holds exactly these bytes is left as it is.
    An interactive view (:class:`xpcli.html.page.View`, for ``-o FILE.html``) writes itself."""
    if getattr(fig, "is_html_view", False):
        view: Any = fig
        return str(view.save(path, only_if_changed=only_if_changed))
    suffix = os.path.splitext(check_output_path(path))[1].lower()

    def write(tmp: str) -> None:
        with matplotlib.rc_context(RC):
            fig.savefig(tmp, format=suffix[1:], dpi=dpi, metadata=_METADATA[suffix])

    return replace_atomically(path, write, only_if_changed)


def replace_atomically(path: str, write: Callable[[str], None],
                       only_if_changed: bool = False) -> str:
    """Call ``write(tmp)`` with a hidden path beside ``path``, then rename it over
    ``path`` (a reader never sees half a file); with ``only_if_changed``, a file that
    already holds exactly these bytes is left as it is. Errors name ``-o path``."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"-o {path}: folder {folder} does not exist")
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        write(tmp)
        if not (only_if_changed and _same_bytes(tmp, path)):
            os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"-o {path}: cannot write ({exc.strerror})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _same_bytes(one: str, other: str) -> bool:
    try:
        with open(one, "rb") as a, open(other, "rb") as b:
            return a.read() == b.read()
    except OSError:
        return False


def spans_decades(values: Sequence[float], decades: float = 2.0) -> bool:
    """True when positive ``values`` span at least ``decades`` powers of ten (log axis)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite or min(finite) <= 0:
        return False
    return math.log10(max(finite) / min(finite)) >= decades
