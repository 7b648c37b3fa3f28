"""Evaluate a model on synthetic (HDR-Synth) and real-camera protocols, beside fixed-curve baselines.

A deterministic synthetic test set is rendered from real HDR images (docs/design.md#evaluation): every scene
(short side resized to ``size`` with ``cv2.INTER_AREA``, centre-cropped to ``size x size``,
normalised to mean 0.5 as in training) is exposed at ``t = 2^u`` for each stop ``u`` in
``exposures`` and passed through each test curve ``F`` of a curve set (the 10 DoRF test curves,
or the modern camera / display test curves) without noise: ``L = Q(F(C(H t)))`` (optionally
JPEG, 4:2:0). The model runs on every ``L`` and is scored, beside
fixed-curve baselines, on three tables (see ``docs/evaluate.md``):

* ``dequantization`` (paper Table 2): PSNR of the input ``L`` and of the Dequantization-Net's
  output ``D`` against the pre-quantisation image ``F(C(H t))``.
* ``curve`` (paper Table 3): RMSE of the inverse curve against the true ``F^-1`` and PSNR of the
  linear image (``g(D)`` for the model, ``g(L)`` for a baseline curve ``g``) against ``C(H t)``.
* ``hdr``: the final HDR against the unclipped ``H t`` after scale matching: PU21 PSNR, log PSNR
  and PU21 PSNR inside the over-exposed pixels of ``L``.

Baselines: inverse sRGB, inverse gamma 2.2 (``g(x) = x^2.2``), the EMoR mean curve ``g0`` and the
true inverse curve, each applied to ``L`` with no hallucination; ``model_true_curve`` is the model
given the true curve. Tables are also given per curve and per curve family.

:func:`evaluate_real` is the real-camera protocol: every single exposure of a hand-held photo
stack against the stack's merged HDR (:mod:`hdr_keras.stack`: MTB alignment, Debevec
calibration and merge). :func:`evaluate` / :func:`evaluate_real` are the library entry points
(tests, training scripts); :func:`add_arguments` / :func:`run` make the CLI subcommand.

Modules: one per protocol, each with its entry point and its Markdown report (:mod:`.synthetic`,
:mod:`.real`; a new protocol is one more module and its flag in :mod:`.command`); :mod:`.scenes`
(the synthetic test set), :mod:`.scoring` (scores against a reference, the model's runtime),
:mod:`.tables` (shared report pieces, JSON), :mod:`.command` (the CLI).
"""

from hdr_keras.evaluate.command import add_arguments, main, number_list, run
from hdr_keras.evaluate.real import REAL_METHODS, evaluate_real, markdown_real
from hdr_keras.evaluate.scenes import (
    DEFAULT_EXPOSURES,
    DEFAULT_SIZE,
    SCENE_MEAN,
    apply_curves,
    gamma_curve,
    load_scenes,
    prepare_scene,
    render,
)
from hdr_keras.evaluate.scoring import PSNR_CAP, Reference
from hdr_keras.evaluate.synthetic import BASELINES, METHODS, evaluate, markdown
from hdr_keras.evaluate.tables import json_safe, write_json

__all__ = [
    "BASELINES",
    "DEFAULT_EXPOSURES",
    "DEFAULT_SIZE",
    "METHODS",
    "PSNR_CAP",
    "REAL_METHODS",
    "SCENE_MEAN",
    "Reference",
    "add_arguments",
    "apply_curves",
    "evaluate",
    "evaluate_real",
    "gamma_curve",
    "json_safe",
    "load_scenes",
    "main",
    "markdown",
    "markdown_real",
    "number_list",
    "prepare_scene",
    "render",
    "run",
    "write_json",
]

