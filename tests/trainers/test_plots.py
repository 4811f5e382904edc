"""The figures a run logs label their axes with the class names of class.txt, which are often
Chinese: with the CJK font that CI installs (fonts-wqy-zenhei), no character is drawn as a box."""

import warnings

import numpy as np
from matplotlib import font_manager

from trainers.plots import confusion_figure


def test_the_confusion_figure_draws_chinese_class_names_with_a_cjk_font(tmp_path):
    cjk = [f.name for f in font_manager.fontManager.ttflist if "WenQuanYi" in f.name]
    assert cjk, "no CJK font installed (.ci/run installs fonts-wqy-zenhei)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = confusion_figure(np.eye(3, dtype=int), ["财经", "房产", "股票"], "测试")
        fig.savefig(tmp_path / "confusion.png")
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []
    assert (tmp_path / "confusion.png").stat().st_size > 0
