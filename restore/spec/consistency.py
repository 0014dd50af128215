"""Data first: the test that accepts or rejects the prior per region, and the frame-wide correction.

The final image is ``x = anchor + r``: the anchor is the prior's restoration where its test accepts
it and a regularised deconvolution elsewhere; ``r`` is an image-space correction, smooth by a
gradient penalty whose weight follows Morozov's discrepancy principle (reduced chi-square ``target``),
fitted band by band against every observed pixel of the frame.

Example:
    >>> ConsistencySpec().alpha
    0.001
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .base import OddSize, PositiveFloat, Spec


class ConsistencySpec(Spec):
    correct: bool = Field(True, description="fit the frame-wide correction r (False: the anchor is the output)")
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = Field(
        1e-3, description="significance of the prior-rejection test (chi-square, n observed values as dof)"
    )
    target: PositiveFloat = Field(1.0, description="reduced chi-square the correction aims at (discrepancy principle)")
    iterations: Annotated[int, Field(ge=1)] = Field(30, description="conjugate-gradient steps per solve")
    band: Annotated[int, Field(ge=8)] = Field(64, description="observed rows per correction band")
    rounds: Annotated[int, Field(ge=0)] = Field(
        4, description="rounds making the weight local (the discrepancy holds in every neighbourhood); 0: one weight"
    )
    window: OddSize = Field(9, description="neighbourhood of the local discrepancy, in observed pixels (odd)")
