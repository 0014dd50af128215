"""Data first: the test that accepts or rejects the prior per region, and the frame-wide correction.

The final image is ``x = anchor + r``: the anchor is the prior's restoration where its test accepts
it (its share ``prior_weight``, the rest the classical solution's) and a regularised deconvolution
elsewhere; ``r`` is an image-space correction, smooth by a gradient penalty whose weight keeps the
reduced chi-square at most ``target`` (the discrepancy principle) and, by ``rule``, is the largest such
weight (Morozov) or has the least estimated risk among those (Stein), fitted band by band against every
observed pixel of the frame.

Example:
    >>> ConsistencySpec().alpha
    0.001
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import PositiveFloat, Spec


class ConsistencySpec(Spec):
    correct: bool = Field(True, description="fit the frame-wide correction r (False: the anchor is the output)")
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = Field(
        1e-3, description="significance of the prior-rejection test (chi-square, n observed values as dof)"
    )
    rule: Literal["discrepancy", "risk"] = Field(
        "discrepancy", description="how the correction's weight is set: discrepancy, Morozov's: the largest "
        "weight whose chi-square is at most target; risk (experimental), the least estimated risk (Stein's: "
        "the chi-square expected against a new noise draw) among weights whose chi-square is at most target"
    )
    target: PositiveFloat = Field(
        1.0, description="largest reduced chi-square the correction may choose: the discrepancy rule's level, "
        "the risk rule's ceiling (e.g. 1.1); inside the consistency band"
    )
    iterations: Annotated[int, Field(ge=1)] = Field(30, description="conjugate-gradient steps per solve")
    band: Annotated[int, Field(ge=8)] = Field(64, description="observed rows per correction band")
    rounds: Annotated[int, Field(ge=0)] = Field(
        10, description="bisection rounds making the weight local: the discrepancy holds in every region "
        "(each tile or object, and the background), not only on average; 0: one weight"
    )
    levels: Annotated[int, Field(ge=1)] = Field(
        6, description="signal-level classes (half decades of the observed signal-to-noise) that split each "
        "region's zone of the local weight, so the discrepancy holds at every level (bright cores and the faint "
        "sky around them); 1: one zone per region"
    )
    prior_weight: Annotated[float, Field(ge=0, le=1)] | Literal["card"] = Field(
        "card", description="the share of the prior's restoration in the image written, over the classical "
        "solution (x = classical + w (prior - classical), one correction): 1 the prior's restoration, 0 the "
        "classical solution alone (no search); card: the prior card's calibrated weight for the factor "
        "(benchmarks.calibrate: least squares on held-out crops), 1 where the card has none"
    )
