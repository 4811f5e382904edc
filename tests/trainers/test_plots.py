"""The figures a run logs label their axes with the class names of class.txt, which are often
Chinese: with the CJK font that CI installs (fonts-wqy-zenhei), no character is drawn as a box."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from matplotlib import font_manager

from trainers.plots import confusion_figure


def test_the_confusion_figure_draws_chinese_class_names_with_a_cjk_font(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = confusion_figure(np.eye(3, dtype=int), ["财经", "房产", "股票"], "测试")
        fig.savefig(tmp_path / "confusion.png")
    cjk = [f.name for f in font_manager.fontManager.ttflist if "WenQuanYi" in f.name]
    assert cjk, "no CJK font installed (.ci/run installs fonts-wqy-zenhei)"
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []
    assert (tmp_path / "confusion.png").stat().st_size > 0


@pytest.mark.slow
def test_a_cjk_font_installed_after_matplotlib_listed_the_fonts_is_found(tmp_path):
    # matplotlib's font list is cached per user and rebuilt only on a new matplotlib version;
    # a font installed later (apt-get install fonts-wqy-zenhei) is not in it.
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl")}
    build = "import matplotlib.font_manager"
    subprocess.run([sys.executable, "-c", build], env=env, check=True, timeout=120)
    (cache,) = (tmp_path / "mpl").glob("fontlist-*.json")
    listed = json.loads(cache.read_text(encoding="utf-8"))
    before = len(listed["ttflist"])
    listed["ttflist"] = [f for f in listed["ttflist"] if "WenQuanYi" not in f["name"]]
    assert len(listed["ttflist"]) < before, "no CJK font installed to hide"
    cache.write_text(json.dumps(listed), encoding="utf-8")
    draw = textwrap.dedent(f"""
        import warnings
        import numpy as np
        from trainers.plots import confusion_figure
        warnings.simplefilter("error")  # a missing glyph fails the process
        fig = confusion_figure(np.eye(2, dtype=int), ["财经", "房产"], "测试")
        fig.savefig({str(tmp_path / "c.png")!r})
    """)
    drawn = subprocess.run(
        [sys.executable, "-c", draw], env=env, capture_output=True, text=True, timeout=120
    )
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    assert "WenQuanYi" not in cache.read_text(encoding="utf-8")  # the stale list was used
