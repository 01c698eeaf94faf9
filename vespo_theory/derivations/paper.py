"""Derive checks of the paper's own statements P1-P10 (arXiv 2602.10693 v3; docs/theory.md).

(Being written: the checks register themselves here with ``@register("P<n>")``.)
"""

from __future__ import annotations
