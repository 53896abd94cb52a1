"""Cost of a model counted the way BNN papers do (see docs/complexity.md).

- BOPs: binary multiply-accumulates (1-bit weights x 1-bit activations).
- FLOPs: full-precision multiply-accumulates (stem, real shortcuts, classifier; a
  convolution with 1-bit weights but real activations counts here too).
- OPs = BOPs / 64 + FLOPs.
- Memory: 1 bit per binary weight, 32 bits per other parameter, in Mbit (1e6 bits).
  Batch normalization counts two numbers per channel (at inference it folds into one
  scale and one offset), the in-model input normalization counts nothing, and
  pooling, additions and activations cost nothing.

Counting uses larq's own per-layer profile (`larq.models.LayerProfile`): MACs are
kernel elements times output pixels, at the precision of the layer's input and kernel
quantizers, so grouped convolutions are counted per group.
"""
from dataclasses import dataclass
from typing import Iterator, List, Tuple

import larq as lq
import tensorflow as tf

NOT_COUNTED = (tf.keras.layers.Normalization, tf.keras.layers.Rescaling)


@dataclass(frozen=True)
class LayerCost:
    """Cost of one layer.

    Arguments:
        name: the layer's name.
        kind: "binary" (it has binary MACs), "full precision" (only full-precision
            MACs), "batch norm", "preprocessing" (not counted), else the layer's class
            name.
        output_shape: the layer's output shape, as larq's profile reports it.
        bops: binary multiply-accumulates.
        flops: full-precision multiply-accumulates.
        binary_params: number of 1-bit weights.
        float_params: number of other (32-bit) parameters.
    """

    name: str
    kind: str
    output_shape: Tuple
    bops: int
    flops: int
    binary_params: int
    float_params: int

    @property
    def memory_mbit(self) -> float:
        """Parameter memory in Mbit (1e6 bits): 1 bit per binary, 32 per other parameter."""
        return (self.binary_params + 32 * self.float_params) / 1e6


@dataclass(frozen=True)
class Complexity:
    """Totals and the per-layer table of a model's cost.

    Arguments:
        layers: the `LayerCost` of every counted layer, in model order.
    """

    layers: Tuple[LayerCost, ...]

    @property
    def bops(self) -> int:
        """Binary multiply-accumulates (BOPs) of all layers."""
        return sum(layer.bops for layer in self.layers)

    @property
    def flops(self) -> int:
        """Full-precision multiply-accumulates (FLOPs) of all layers."""
        return sum(layer.flops for layer in self.layers)

    @property
    def ops(self) -> float:
        """OPs = BOPs / 64 + FLOPs."""
        return self.bops / 64 + self.flops

    @property
    def binary_params(self) -> int:
        """Number of 1-bit weights."""
        return sum(layer.binary_params for layer in self.layers)

    @property
    def float_params(self) -> int:
        """Number of full-precision (32-bit) parameters."""
        return sum(layer.float_params for layer in self.layers)

    @property
    def params(self) -> int:
        """Number of parameters, binary and full precision."""
        return self.binary_params + self.float_params

    @property
    def memory_mbit(self) -> float:
        """Parameter memory in Mbit (1e6 bits), the sum over layers."""
        return sum(layer.memory_mbit for layer in self.layers)

    @property
    def memory_mb(self) -> float:
        """Memory in megabytes (1e6 bytes)."""
        return self.memory_mbit / 8

    def as_dict(self) -> dict:
        """Totals, for JSON records and tables.

        Returns:
            A dict with `bops`, `flops`, `ops`, `binary_params`, `float_params`,
            `params` and `memory_mbit`.
        """
        return dict(
            bops=self.bops, flops=self.flops, ops=self.ops, binary_params=self.binary_params,
            float_params=self.float_params, params=self.params, memory_mbit=self.memory_mbit,
        )

    def table(self, per_layer: bool = True) -> str:
        """A plain-text table (per layer, then the totals).

        Arguments:
            per_layer: include a row per layer (those with a cost or parameters)
                before the totals; default True. False gives the totals only.

        Returns:
            The table as one string, lines separated by newlines.
        """
        head = (f"{'layer':<34} {'kind':<14} {'output':<18} {'BOPs':>12} {'FLOPs':>12} {'bin params':>11} "
                f"{'fp params':>10}")
        rows = []
        if per_layer:
            rows += [head, "-" * len(head)]
            rows += [
                f"{l.name:<34} {l.kind:<14} {str(l.output_shape):<18} {l.bops:>12,} {l.flops:>12,} "
                f"{l.binary_params:>11,} {l.float_params:>10,}"
                for l in self.layers
                if l.bops or l.flops or l.binary_params or l.float_params
            ]
            rows.append("-" * len(head))
        rows += [
            f"BOPs    {self.bops:.4g}   (binary multiply-accumulates)",
            f"FLOPs   {self.flops:.4g}   (full-precision multiply-accumulates)",
            f"OPs     {self.ops:.4g}   (BOPs / 64 + FLOPs)",
            f"params  {self.params:,} ({self.binary_params:,} binary, {self.float_params:,} full precision)",
            f"memory  {self.memory_mbit:.2f} Mbit = {self.memory_mb:.2f} MB",
        ]
        return "\n".join(rows)


def iter_layers(model: tf.keras.Model) -> Iterator[tf.keras.layers.Layer]:
    """Every layer of `model`, the layers of nested models in their place."""
    return (layer for _, layer in _owned_layers(model))


def _owned_layers(model: tf.keras.Model) -> Iterator[Tuple[tf.keras.Model, tf.keras.layers.Layer]]:
    """(the model that calls it, layer) for every layer of `model`, nested ones included."""
    for layer in model.layers:
        if isinstance(layer, tf.keras.Model):
            yield from _owned_layers(layer)
        else:
            yield model, layer


def binary_layers(model: tf.keras.Model) -> Iterator[Tuple[tf.keras.layers.Layer, int]]:
    """(layer, how many times the model calls it) of every layer with binary MACs,
    nested models searched; a layer shared by several calls (the detector's head)
    counts as binary as `complexity` counts it, over all its calls."""
    for owner, layer in _owned_layers(model):
        calls = _calls(owner, layer)
        if layer_cost(layer, *calls).bops:
            yield layer, calls[0]


def binary_convolutions(model: tf.keras.Model) -> List[Tuple[str, int]]:
    """(layer name, number of binary convolution ops it should become in an exported
    file) of each binary layer: one per group (a Group-Net fused convolution has one per
    base) and per call (the detector's head is shared by the pyramid levels)."""
    return [(layer.name, getattr(layer, "groups", 1) * calls) for layer, calls in binary_layers(model)]


def _kind(layer: tf.keras.layers.Layer, bops: int, flops: int) -> str:
    if bops:
        return "binary"
    if flops:
        return "full precision"
    if isinstance(layer, tf.keras.layers.BatchNormalization):
        return "batch norm"
    return type(layer).__name__


def layer_cost(layer: tf.keras.layers.Layer, calls: int = 1, pixels: int = 0) -> LayerCost:
    """Cost of one (non-nested) layer.

    MACs whose precision (larq's profile) is 1 bit count as BOPs, all others as FLOPs.
    Input preprocessing (`Normalization`, `Rescaling`) counts nothing. A layer called
    several times in the model (the detector's head, shared by the pyramid levels)
    counts its MACs at every call: `calls` > 1 with `pixels`, the output pixels of
    all calls together.

    Arguments:
        layer: a built Keras layer that is not itself a model.
        calls: how many times the model calls it; default 1.
        pixels: with `calls` > 1, the output pixels of all calls together.

    Returns:
        Its `LayerCost`.
    """
    profile = lq.models.LayerProfile(layer)
    shape = profile.output_shape if calls == 1 else "multiple"
    if isinstance(layer, NOT_COUNTED):
        return LayerCost(layer.name, "preprocessing", shape, 0, 0, 0, 0)
    bops = flops = 0
    if calls == 1:
        ops = [(op.precision, op.n) for op in profile.op_profiles]
    elif isinstance(layer, lq.models.mac_containing_layers):
        precision = profile.input_precision or 32
        ops = [(max(precision, p.bitwidth), p.count * pixels) for p in profile.weight_profiles if not p.is_bias()]
    else:
        ops = []
    for precision, n in ops:
        if precision == 1:
            bops += n
        else:
            flops += n
    binary = profile.weight_count(bitwidth=1)
    return LayerCost(
        name=layer.name,
        kind=_kind(layer, bops, flops),
        output_shape=shape,
        bops=bops,
        flops=flops,
        binary_params=binary,
        float_params=profile.weight_count() - binary,
    )


def _calls(model: tf.keras.Model, layer: tf.keras.layers.Layer) -> Tuple[int, int]:
    """(calls of `layer` in `model`, their output pixels together)."""
    keys = getattr(model, "_network_nodes", None)
    nodes = [n for i, n in enumerate(layer._inbound_nodes) if keys is None or f"{layer.name}_ib-{i}" in keys]
    if len(nodes) <= 1:
        return 1, 0
    shapes = [tf.nest.flatten(n.outputs)[0].shape for n in nodes]
    return len(nodes), sum(int(s[1] * s[2]) if len(s) == 4 else 1 for s in shapes)


def complexity(model: tf.keras.Model) -> Complexity:
    """BOPs, FLOPs, OPs, parameters and memory of `model`, per layer and in total.

    Arguments:
        model: a built Keras model (nested models are counted layer by layer).

    Returns:
        A `Complexity` record: `.bops`, `.flops`, `.ops`, `.binary_params`,
        `.float_params`, `.params`, `.memory_mbit`, `.memory_mb` and `.layers`.
    """
    return Complexity(tuple(layer_cost(layer, *_calls(owner, layer)) for owner, layer in _owned_layers(model)))
