"""A CJK font for figures whose labels are Chinese (class names, metric keys).

Shared by the comparison figure (tracker.dashboard) and the figures each training run logs
(trainers.plots): matplotlib's default sans-serif list has no CJK font, so without this it
draws boxes for Chinese characters and warns once per missing glyph.
"""

from __future__ import annotations

import logging

import matplotlib


class _NearestWeightIsFine(logging.Filter):
    """Drops matplotlib's "Failed to find font weight normal for WenQuanYi Zen Hei, now using
    500": CJK fonts often ship one weight, which is the right one to use; the message would
    otherwise land on the stderr of every command that draws a figure."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("findfont: Failed to find font weight")


def _quiet_weight_fallback() -> None:
    log = logging.getLogger("matplotlib.font_manager")
    if not any(isinstance(f, _NearestWeightIsFine) for f in log.filters):
        log.addFilter(_NearestWeightIsFine())


def use_cjk_font_if_available() -> str | None:
    """Put an installed CJK font first in the sans-serif list, so Chinese label names render.

    Returns the font's name, or None when the machine has none (DejaVu then draws boxes for
    Chinese characters, and matplotlib warns about the missing glyphs).
    """

    wanted = (
        "Noto Sans CJK SC",
        "Noto Sans SC",
        "Source Han Sans SC",
        "WenQuanYi Zen Hei",
        "WenQuanYi Micro Hei",
        "SimHei",
        "Microsoft YaHei",
        "PingFang SC",
        "Noto Sans CJK JP",
    )
    name = _first_available(wanted) or (
        _add_fonts_installed_since_cache() and _first_available(wanted)
    )
    if not name:
        return None
    current = list(matplotlib.rcParams["font.sans-serif"])
    matplotlib.rcParams["font.sans-serif"] = [name, *[c for c in current if c != name]]
    _quiet_weight_fallback()
    return name


def _first_available(wanted: tuple[str, ...]) -> str | None:
    from matplotlib import font_manager

    available = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in wanted if name in available), None)


def _add_fonts_installed_since_cache() -> int:
    """matplotlib lists the system's fonts once, in a cache it rebuilds only when its own
    version changes: a CJK font installed after the first figure ever drawn on the machine
    (`apt-get install fonts-wqy-zenhei`) stays invisible to it. Add the font files the cache
    does not know, for this process (only when no CJK font was found)."""
    from matplotlib import font_manager

    known = {f.fname for f in font_manager.fontManager.ttflist}
    added = 0
    for path in font_manager.findSystemFonts():
        if path in known:
            continue
        try:
            font_manager.fontManager.addfont(path)
            added += 1
        except (OSError, RuntimeError, ValueError):  # a file FreeType cannot read: skip it
            continue
    return added
