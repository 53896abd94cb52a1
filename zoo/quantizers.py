"""Quantizers of the zoo's papers, registered with Larq.

Each quantizer is a `larq.quantizers.Quantizer` registered with
`larq.utils.register_keras_custom_object` and an alias, so that its string name works
in `QuantConv2D(input_quantizer=..., kernel_quantizer=...)` and a whole-model h5 file
reloads. `precision` tells `zoo.complexity` (and `larq.models.summary`) whether the
layer's multiply-accumulates are binary (1) or full precision (32).

- Bi-Real Net (Liu et al., ECCV 2018): its binary quantizers are Larq's, `"approx_sign"`
  (activations) and `"magnitude_aware_sign"` (weights, per output channel, with
  `"weight_clip"`). Here: `"clip"`, the sign's stand-in in the real-valued stage 1, and
  `"leaky_clip"`, Bi-Real Net 50's one real-valued convolution.
- IR-Net (Qin et al., CVPR 2020): `"libra_pb_sign"` (weights) and `"ede_sign"`
  (activations), whose backward passes read one `EDESchedule` per model.
- Group-Net (Zhuang et al., CVPR 2019): `"groupnet_weight_sign"` (weights; activations
  use Larq's `"approx_sign"`) and `"tanh"`, the activation sign's stand-in in stage 1.

Every binary quantizer's forward pass is a sign with sign(0) = +1 (Larq's
`lq.math.sign`); weight quantizers take Keras kernels, output channels on the last axis.

The EDE quantizers' backward pass is one XLA-compiled kernel (`zoo.fused`).
"""
import math
from typing import Optional

import larq as lq
import tensorflow as tf

from zoo.fused import fused_backward, fusing, hardtanh, mean_abs, sign_with_backward


@lq.utils.register_alias("clip")
@lq.utils.register_keras_custom_object
class Clip(lq.quantizers.Quantizer):
    r"""Full-precision stand-in for a sign quantizer: clip(x, -1, 1).

    Used by the real-valued pre-training stage of Bi-Real Net, whose twin network
    replaces every sign by clip(x, -1, 1); the gradient is 1 on [-1, 1] (ends
    included), 0 outside.

    References:
        - Liu et al., Bi-Real Net, ECCV 2018, Section 3.4 (real-valued initialisation).
    """

    precision = 32

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fused = fusing()  # its backward pass fused (`zoo.fused.hardtanh`) unless made in unfused()

    def call(self, inputs):
        return hardtanh(inputs, self.fused)


@lq.utils.register_alias("leaky_clip")
@lq.utils.register_keras_custom_object
class LeakyClip(lq.quantizers.Quantizer):
    r"""Full-precision leaky clip: x inside [-1, 1], slope 0.1 outside.

    Forward: clip(x, -1, 1) + 0.1 (x - clip(x, -1, 1)); gradient 1 inside [-1, 1],
    0.1 outside. Bi-Real Net 50's official code puts it before the one full-precision
    1x1 convolution of the first bottleneck (the only real-valued conv of the body).

    References:
        - Liu et al., Bi-Real Net, ECCV 2018; Bi-Real Net 50's official code.
    """

    precision = 32

    def call(self, inputs):
        clipped = tf.clip_by_value(inputs, -1.0, 1.0)
        return clipped + 0.1 * (inputs - clipped)


# -- IR-Net (Qin et al., CVPR 2020) ---------------------------------------------------
T_MIN, T_MAX = 0.1, 10.0  # the paper's EDE range


def ede_t_k(progress: float, t_min: float = T_MIN, t_max: float = T_MAX):
    """EDE's (t, k) at training progress p in [0, 1].

    t = T_min * 10^(p * log10(T_max / T_min)),  k = max(1 / t, 1).
    On CIFAR p = epoch / epochs (epoch counted from 0); on ImageNet p = step / steps.

    Arguments:
        progress: the training progress p, from 0 (start) to 1 (end).
        t_min: t at p = 0 (the paper's 0.1).
        t_max: t at p = 1 (the paper's 10).

    References:
        - Qin et al., IR-Net, CVPR 2020, Section 3.2 (EDE).
    """
    t = t_min * 10 ** (progress * math.log10(t_max / t_min))
    return t, max(1.0 / t, 1.0)


def _ede_backward(x, dy, t, k):
    return dy * k * t * (1.0 - tf.square(tf.tanh(t * x)))


_ede_backward_fused = fused_backward(_ede_backward)


def ede_sign(x: tf.Tensor, t, k, fused: bool = True) -> tf.Tensor:
    """sign(x) forward (sign(0) = +1); backward k * t * (1 - tanh(t x)^2), no clipping.

    Arguments:
        x: the tensor to binarize.
        t: EDE's t: a float, tensor or variable, read at each call (so assigning a
            variable takes effect without retracing); cast to `x`'s dtype.
        k: EDE's k, likewise.
        fused: the backward pass as one XLA kernel (default), or op by op.

    References:
        - Qin et al., IR-Net, CVPR 2020, Section 3.2 (EDE).
    """
    backward = _ede_backward_fused if fused else _ede_backward
    return sign_with_backward(x, backward, tf.cast(t, x.dtype), tf.cast(k, x.dtype))


@lq.utils.register_keras_custom_object
class EDESchedule(tf.keras.layers.Layer):
    """EDE's t and k as non-trainable tf.Variables, shared by a model's EDE quantizers.

    A model factory makes one and hands it to every `EDESign` / `LibraPBSign`, so one
    schedule drives weights and activations alike; the training callback
    (`zoo.models.irnet.EDEUpdate`) sets it with `assign(*ede_t_k(p))` (`assign` does
    not derive k from t). A quantizer built without one (for instance after
    `load_model`) makes its own; the callback updates every schedule it finds in a model.

    The layer only holds the variables (calling it is the identity). `t` and `k` start
    at `ede_t_k(0.0)`, i.e. t = T_MIN and k = 1 / T_MIN.

    References:
        - Qin et al., IR-Net, CVPR 2020, Section 3.2 (EDE).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        t, k = ede_t_k(0.0)
        self.t = self.add_weight("t", shape=(), initializer=tf.constant_initializer(t), trainable=False)
        self.k = self.add_weight("k", shape=(), initializer=tf.constant_initializer(k), trainable=False)

    def assign(self, t: float, k: float) -> None:
        self.t.assign(t)
        self.k.assign(k)

    def call(self, inputs):
        return inputs


class _Untracked:
    """Holds an object without Keras tracking it (its variables stay out of `weights`)."""

    def __init__(self, value):
        self.value = value


class _EDEQuantizer(lq.quantizers.Quantizer):
    """A binary quantizer whose backward pass reads a (shared) `EDESchedule`.

    The schedule is training state, not a weight of the model: it is kept out of the
    layer's weights (so h5 files and `get_weights()` are the same with or without
    EDE), and the callback recomputes it from the epoch or step when a run resumes.
    Without a schedule the quantizer makes its own on first use of `schedule`.
    """

    precision = 1

    def __init__(self, schedule: Optional[EDESchedule] = None, **kwargs):
        super().__init__(**kwargs)
        self._schedule = _Untracked(schedule)
        self.fused = fusing()  # built inside `unfused()`: the op-by-op backward

    @property
    def schedule(self) -> EDESchedule:
        if self._schedule.value is None:
            self._schedule.value = EDESchedule(name=f"{self.name}_schedule")
        return self._schedule.value

    def get_config(self):
        # The shared schedule is state, not configuration: a deserialized quantizer
        # makes its own, which the EDE callback finds and drives like any other.
        return super().get_config()


@lq.utils.register_alias("ede_sign")
@lq.utils.register_keras_custom_object
class EDESign(_EDEQuantizer):
    r"""IR-Net's Error Decay Estimator on sign (activations, or weights without Libra-PB).

    Forward: sign(x). Backward: dq/dx = k t (1 - tanh^2(t x)), the derivative of
    k tanh(t x), with t growing from T_min to T_max during training and
    k = max(1/t, 1): at first close to the identity, at the end close to sign.

    Arguments:
        schedule: the `EDESchedule` whose t and k the backward pass reads, shared with
            the model's other EDE quantizers; default None: the quantizer makes its own
            on first use.

    References:
        - Qin et al., Forward and Backward Information Retention for Accurate Binary
          Neural Networks (IR-Net), CVPR 2020, Section 3.2.
    """

    def call(self, inputs):
        return ede_sign(inputs, self.schedule.t, self.schedule.k, self.fused)


@lq.utils.register_alias("libra_pb_sign")
@lq.utils.register_keras_custom_object
class LibraPBSign(_EDEQuantizer):
    r"""IR-Net's Libra Parameter Binarization of weights, per output channel c.

        w_hat = w - mean_c(w);  w_std = w_hat / std_c(w_hat)   (unbiased std, as the
        official code's torch.std);  s_c = 2^round(log2(mean_c |w_std|)) (stop-gradient);
        Q(w) = s_c * sign(w_std).

    The mean and std run over all of a kernel's axes but the last (output channels).
    The gradient flows through the balancing and standardization (mean and std are
    not stop-gradiented) and through the sign by EDE (`estimator="ede"`), or by the
    straight-through identity, unclipped (`estimator="ste"`, the ablation without
    EDE). The scale s_c is an integer power of two, so it is a bit shift at inference.

    Arguments:
        schedule: the shared `EDESchedule` read by the EDE backward pass; default None:
            the quantizer makes its own on first use (unused with `estimator="ste"`).
        estimator: the gradient of the sign, "ede" (default) or "ste"; anything else
            raises a ValueError.

    References:
        - Qin et al., IR-Net, CVPR 2020, Section 3.1 (Libra-PB), and Section 3.2 (EDE)
          for the estimator.
    """

    def __init__(self, schedule: Optional[EDESchedule] = None, estimator: str = "ede", **kwargs):
        if estimator not in ("ede", "ste"):
            raise ValueError(f"estimator must be 'ede' or 'ste', not {estimator!r}.")
        super().__init__(schedule, **kwargs)
        self.estimator = estimator

    def call(self, kernel):
        # In float32 under a mixed policy too (its reductions, as Keras' own): cast back.
        inputs = tf.cast(kernel, tf.float32)
        axes = list(range(len(inputs.shape) - 1))  # all but the output channels
        n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), inputs.dtype)
        balanced = inputs - tf.reduce_mean(inputs, axis=axes, keepdims=True)
        variance = tf.reduce_sum(tf.square(balanced), axis=axes, keepdims=True) / (n - 1.0)
        # The 1e-12 is not the official code's: a constant channel gives 0, not 0 / 0.
        standardized = balanced / tf.sqrt(variance + 1e-12)
        mean_abs = tf.reduce_mean(tf.abs(standardized), axis=axes, keepdims=True)
        scale = tf.stop_gradient(tf.pow(2.0, tf.round(tf.math.log(mean_abs) / math.log(2.0))))
        if self.estimator == "ede":
            signs = ede_sign(standardized, self.schedule.t, self.schedule.k, self.fused)
        else:
            signs = lq.quantizers.ste_sign(standardized, clip_value=None)
        return tf.cast(scale * signs, kernel.dtype)

    def get_config(self):
        return {**super().get_config(), "estimator": self.estimator}


# -- Group-Net (Zhuang et al., CVPR 2019) ---------------------------------------------
@lq.utils.register_alias("groupnet_weight_sign")
@lq.utils.register_keras_custom_object
class GroupNetWeightSign(lq.quantizers.Quantizer):
    r"""Group-Net's weight binarization: sign(W) times one mean |W| per binary base.

    Forward, for the kernel slice W_g of group g (the last axis, the output channels,
    split into `groups` equal contiguous slices):

        Q(W_g) = mean(|W_g|) * sign(W_g)      (sign(0) = +1, as Larq)

    The official code binarizes each base's convolution with one scalar for the whole
    layer. The zoo fuses the K bases of a Group-Net block into one grouped convolution
    (`groups=K`), whose kernel holds the K bases' kernels side by side on the output
    axis, so one scale per group is exactly one scale per base layer.

    Backward: the identity, dQ/dW = 1, without clipping. The scale is a constant (it
    gets no gradient), and the official code's backward returns the upstream gradient
    unchanged (it is not multiplied by the scale either).

    Arguments:
        groups: the number of equal slices of the last (output) axis, each with its own
            scale; the number of bases of a fused Group-Net convolution. Default 1.

    Raises:
        ValueError: `groups` is less than 1; or, when called, the kernel's last axis
            does not divide into `groups` slices.

    References:
        - Zhuang et al., Structured Binary Neural Networks for Accurate Image
          Classification and Semantic Segmentation (Group-Net), CVPR 2019; official
          code `new_layers.py` (`Q_W`).
    """

    precision = 1

    def __init__(self, groups: int = 1, **kwargs):
        if int(groups) < 1:
            raise ValueError(f"groups must be a positive integer, not {groups!r}.")
        super().__init__(**kwargs)
        self.groups = int(groups)

    def call(self, inputs):
        groups = self.groups

        @tf.custom_gradient
        def _binarize(w):
            channels = w.shape[-1]
            if channels % groups:
                raise ValueError(
                    f"GroupNetWeightSign(groups={groups}) needs a kernel whose last axis "
                    f"divides into {groups} slices; got shape {tuple(w.shape)}."
                )
            # Group g is output channels [g C/K, (g + 1) C/K), a grouped convolution's layout.
            sliced = tf.reshape(w, [-1, groups, channels // groups])
            scale = mean_abs(sliced, axis=[0, 2], keepdims=True)
            binary = tf.reshape(lq.math.sign(sliced) * scale, tf.shape(w))
            return binary, lambda dy: dy

        return _binarize(inputs)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@lq.utils.register_alias("tanh")
@lq.utils.register_keras_custom_object
class Tanh(lq.quantizers.Quantizer):
    r"""Full-precision stand-in for the activation sign: tanh(x).

    Stage 1 of Group-Net's recipe pre-trains the same K-base network with real weights
    and tanh in place of every activation sign; its gradient is 1 - tanh(x)^2.

    References:
        - Zhuang et al., Group-Net, CVPR 2019; official code `model.py`
          (`quan_activations` with 32 bits) and `pretrain.py`.
    """

    precision = 32

    def call(self, inputs):
        return tf.tanh(inputs)
