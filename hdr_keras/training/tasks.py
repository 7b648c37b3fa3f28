"""What each training run optimises: one stage on its ground-truth input, or the joint chain.

A task takes a synthetic batch from :class:`hdr_keras.camera.CameraModel` (``ldr``,
``pre_quantization``, ``clipped``, ``hdr``, ``inverse_crf``, ``loss_weight``) and returns
``(losses, outputs)``: a dict of scalar losses whose ``"loss"`` entry is the weighted total, and
the images and curves worth logging. ``Task.weights_name`` is the file the trained part goes to;
:data:`WHOLE_WEIGHTS` is the file of the whole chain (what ``predict``/``evaluate --weights`` load).
"""

import dataclasses

from keras import ops

from hdr_keras.training import losses as L

STAGE_MODELS = {"deq": "dequantization", "lin": "linearization", "hal": "hallucination", "ref": "refinement"}
WHOLE_WEIGHTS = "single_hdr.weights.h5"


def _f32(x):
    return ops.cast(x, "float32")


@dataclasses.dataclass
class LossWeights:
    """Paper eq. 4 weights (joint fine-tune); the stage runs use the ratios of docs/design.md#training."""

    deq: float = 1.0
    lin: float = 10.0
    crf: float = 1.0
    hal: float = 1.0
    perceptual: float = 0.001
    tv: float = 0.1
    chroma: float = 1.0
    level: float = 0.2


class Task:
    """Base: the model, which part is trained, and how its loss is computed."""

    name = ""
    weights_name = ""
    uses_ldr = True
    """Whether the losses see the 8-bit LDR (or what is made from it); if not, batches are rendered
    without JPEG, the most expensive part of the camera model on a CPU."""

    def __init__(self, model, weights=None, perceptual=None):
        self.model = model
        self.weights = weights or LossWeights()
        self.perceptual = perceptual

    @property
    def trained(self):
        """The Keras model whose weights this task trains and saves."""
        return getattr(self.model, STAGE_MODELS[self.name])

    def hallucination_losses(self, prediction, target, weight):
        """L1 + perceptual + TV of HDR images in the log domain ``y = log(1 + 10x) / log(11)``, plus,
        inside the regions the camera clipped, the L1 of the chromaticities (colour of the fill) and
        of the log level (its brightness): the whole-image terms are dominated by the unclipped
        pixels, and a fill of the wrong colour costs them little."""
        y_pred, y_true = L.log_tonemap(prediction), L.log_tonemap(target)
        region = L.clipped_region(target)
        terms = {
            "hal_l1": L.l1(y_pred, y_true, weight),
            "hal_tv": L.total_variation(y_pred, weight),
            "hal_chroma": L.chroma_l1(prediction, target, region, weight),
            "hal_level": L.log_luminance_l1(prediction, target, region, weight),
        }
        w = self.weights
        total = w.hal * terms["hal_l1"] + w.tv * terms["hal_tv"] + w.chroma * terms["hal_chroma"] + w.level * terms["hal_level"]
        if self.perceptual is not None:
            terms["hal_perceptual"] = self.perceptual(y_pred, y_true, weight)
            total += self.weights.perceptual * terms["hal_perceptual"]
        return total, terms


class DequantizationTask(Task):
    """``L2(D(L), F(C(H)))``, optimised in 8-bit code values: ``loss = 255^2 deq_l2``.

    In [0, 1] units the L2 is ~1e-6 and its gradients ~1e-11, far under Adam's epsilon (1e-7),
    which then freezes the net; the 255^2 factor restores Adam's scale invariance. ``deq_l2`` is
    reported in [0, 1] units, as in the joint loss (paper eq. 4). Every sample counts: the
    pre-quantisation target is defined for mostly dark or clipped images too, and a net never
    shown them alters their near-white pixels.
    """

    name, weights_name = "deq", "dequantization.weights.h5"
    CODE_VALUE_SCALE = 255.0**2

    def __call__(self, batch, training):
        output = _f32(self.model.dequantization(batch["ldr"], training=training))
        l2 = L.mean_l2(output, batch["pre_quantization"])
        return {"loss": self.CODE_VALUE_SCALE * l2, "deq_l2": l2}, {"input": batch["ldr"], "prediction": output, "target": batch["pre_quantization"]}


class LinearizationTask(Task):
    """``L2(g(F(C(H))), C(H)) + 0.1 L2(g, g_true) + 0.02 L2(log g, log g_true)``, input ``F(C(H))``.

    The last term (not in the paper) is the curve's error in stops, ``log((g + e) / (g_true + e))``
    with ``e = 1/1024``: the linear terms hardly see the shadows, where a curve that is right in
    RMSE can still be off by a stop (measured: the curves of the earlier net were 1.0-1.1 stops off
    below brightness 0.25 on val, inverse sRGB 0.75-0.86), and a perceptual metric (PU21) sees
    exactly that.
    """

    LOG_EPSILON = 1.0 / 1024
    LOG_WEIGHT = 0.02

    name, weights_name = "lin", "linearization.weights.h5"
    uses_ldr = False  # input F(C(H)) is before quantisation; the LDR only sets the loss weight

    def __call__(self, batch, training):
        out = self.model.linearization(batch["pre_quantization"], training=training)
        linear, curve = _f32(out["linear"]), _f32(out["inverse_crf"])
        image = L.l2(linear, batch["clipped"], batch["loss_weight"])
        crf = L.mean_l2(curve, batch["inverse_crf"])
        eps = self.LOG_EPSILON
        crf_log = L.mean_l2(ops.log(curve + eps), ops.log(_f32(batch["inverse_crf"]) + eps))
        outputs = {"input": batch["pre_quantization"], "prediction": linear, "target": batch["clipped"]}
        outputs.update(inverse_crf=curve, true_inverse_crf=batch["inverse_crf"])
        total = image + 0.1 * crf + self.LOG_WEIGHT * crf_log
        return {"loss": total, "lin_l2": image, "crf_l2": crf, "crf_log_l2": crf_log}, outputs


class HallucinationTask(Task):
    """Log-domain L1 + 0.1 TV (+ 0.001 perceptual) of ``Hal(F^-1(L))`` against ``H``.

    The input is the 8-bit (and, with JPEG on, compressed) LDR linearised with the true curve,
    not the clean ``C(H)`` of the paper: at inference the net sees quantisation steps and JPEG
    blocks and ringing around the clipped areas, and trained on clean inputs it turns them into
    coloured speckles.
    """

    name, weights_name = "hal", "hallucination.weights.h5"

    def __call__(self, batch, training):
        output = _f32(self.model.hallucination(batch["linear_ldr"], training=training))
        total, terms = self.hallucination_losses(output, batch["hdr"], batch["loss_weight"])
        return {"loss": total, **terms}, {"input": batch["linear_ldr"], "prediction": output, "target": batch["hdr"]}


class RefinementTask(Task):
    """Refinement-Net on the frozen chain: log-domain L1 + TV of the final HDR against ``H``."""

    name, weights_name = "ref", "refinement.weights.h5"

    def __call__(self, batch, training):
        chain = self.model(batch["ldr"], training=False)
        stop = {k: ops.stop_gradient(chain[k]) for k in ("hallucinated", "linear", "dequantized")}
        output = _f32(self.model.refinement([stop["hallucinated"], stop["linear"], stop["dequantized"]], training=training))
        total, terms = self.hallucination_losses(output, batch["hdr"], batch["loss_weight"])
        return {"loss": total, **terms}, {"input": batch["ldr"], "prediction": output, "target": batch["hdr"]}


def _scale_to_prediction(target, prediction, ldr):
    """Rescales a real HDR [N, H, W, 3] to the prediction's relative scale, per image.

    The factor is ``exp(mean(log pred - log target))`` over pixels well exposed in the LDR
    (all channels in [0.05, 0.95]); it carries no gradient.
    """
    well = ops.cast(ops.logical_and(ops.min(ldr, -1, keepdims=True) > 0.05, ops.max(ldr, -1, keepdims=True) < 0.95), "float32")
    ratio = ops.log(ops.maximum(prediction, 1e-6)) - ops.log(ops.maximum(target, 1e-6))
    mean = ops.sum(ratio * well, axis=(1, 2, 3)) / ops.maximum(ops.sum(well, axis=(1, 2, 3)) * 3.0, 1.0)
    return target * ops.stop_gradient(ops.exp(mean))[:, None, None, None]


class JointTask(Task):
    """Joint fine-tune of the whole chain, paper eq. 4 (refinement included when configured)."""

    name, weights_name = "joint", WHOLE_WEIGHTS

    @property
    def trained(self):
        return self.model

    def __call__(self, batch, training):
        out = {k: _f32(v) for k, v in self.model(batch["ldr"], training=training).items()}
        if "pre_quantization" not in batch:
            return self.real_pair_losses(batch, out)
        w, weight = self.weights, batch["loss_weight"]
        terms = {
            "deq_l2": L.l2(out["dequantized"], batch["pre_quantization"], weight),
            "lin_l2": L.l2(out["linear"], batch["clipped"], weight),
            "crf_l2": L.mean_l2(out["inverse_crf"], batch["inverse_crf"]),
        }
        hal_total, hal_terms = self.hallucination_losses(out["hdr"], batch["hdr"], weight)
        terms.update(hal_terms)
        total = w.deq * terms["deq_l2"] + w.lin * terms["lin_l2"] + w.crf * terms["crf_l2"] + hal_total
        outputs = {"input": batch["ldr"], "prediction": out["hdr"], "target": batch["hdr"]}
        outputs.update(inverse_crf=out["inverse_crf"], true_inverse_crf=batch["inverse_crf"])
        return {"loss": total, **terms}, outputs

    def real_pair_losses(self, batch, out):
        """Real pairs carry no intermediate targets: only the HDR terms, on a scale-matched target."""
        target = _scale_to_prediction(_f32(batch["hdr"]), out["hdr"], _f32(batch["ldr"]))
        total, terms = self.hallucination_losses(out["hdr"], target, batch["loss_weight"])
        return {"loss": total, **terms}, {"input": batch["ldr"], "prediction": out["hdr"], "target": target}


TASKS = {t.name: t for t in (DequantizationTask, LinearizationTask, HallucinationTask, RefinementTask, JointTask)}

