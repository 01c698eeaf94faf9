"""Derive checks of the claims this project adds to the paper's (K5, G1, BIAS1, BT, L1a, L1b,
M4, D1, SN1, ASC1; docs/theory.md).

(Being written: the checks register themselves here with ``@register("<ID>")``.)
"""

from __future__ import annotations
