"""The `zoo` command: training tasks (zookeeper) and list / summary / evaluate.

    zoo list [--cost]                      registered models (paper, input, results, weights)
    zoo summary MODEL [--input-shape ...]  BOPs / FLOPs / OPs / memory, per layer
    zoo evaluate RUN_DIR | MODEL --weights W --dataset D
    zoo export MODEL [--weights W] --out F  Larq Compute Engine .tflite, checked against Keras
    zoo weights list                       the published checkpoints (the weights index)
    zoo weights publish RUN_DIR [--tag T]  add a finished run to the index
    zoo weights evaluate [MODEL ...]       re-measure every published checkpoint
    zoo robustness MODEL --weights W       scores under image corruptions, against the float twin
    zoo TrainBiRealNet20 dataset=FashionMNIST epochs=30 batch_size=128

A user's mistake (`zoo.io.ZooError`: an unknown model, a bad shape or file, missing
data, a run folder in use; and zookeeper's errors of an unknown or mistyped setting)
prints one line `zoo: error: ...` and exits with status 2; set ZOO_DEBUG=1 for the
traceback.
"""
import os
import sys
from typing import Optional, Sequence, Tuple

import click


def _shape(value: Optional[str]) -> Optional[Tuple[int, ...]]:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.replace("x", ",").split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a shape such as 28,28,1") from None


def _fmt(value, spec=".1f", missing="-"):
    return missing if value is None else format(value, spec)


def list_command(cost: bool) -> None:
    """Registered models: family, default input, paper results, published weights."""
    from zoo import complexity, kinds, registry
    from zoo import weights as weights_index

    specs = registry.list_models()
    published = {}
    for e in weights_index.entries():
        if e.include_top:
            headline = kinds.get(e.kind).headline
            name = "" if headline.key == "top1" else headline.name + " "
            value = e.scores.get(headline.key)
            published.setdefault(e.model, []).append(f"{e.tag} {name}{_fmt(value and 100 * value)}")
    w = max(len(spec.name) for spec in specs)
    head = f"{'model':<{w}} {'family':<12} {'input':<13} {'paper (top-1 / top-5)':<28} {'weights (score %)':<16}"
    if cost:
        head += f" {'BOPs':>9} {'FLOPs':>9} {'OPs':>9} {'Mbit':>7}"
    click.echo(head)
    click.echo("-" * len(head))
    for spec in specs:
        reported = next((r for r in spec.reported if r.source == "paper"), None)
        paper = f"{reported.dataset} {reported.value}" if reported else "-"
        shape = "x".join(str(d) for d in spec.default_input_shape)
        tags = ", ".join(published.get(spec.name, [])) or "-"
        row = f"{spec.name:<{w}} {spec.family:<12} {shape:<13} {paper:<28} {tags:<16}"
        if cost:
            c = complexity(spec.build())
            row += f" {c.bops:>9.3g} {c.flops:>9.3g} {c.ops:>9.3g} {c.memory_mbit:>7.1f}"
        click.echo(row)


def summary_command(model: str, input_shape, num_classes, weights, per_layer: bool) -> None:
    """Per-layer and total cost of a model."""
    from zoo import complexity, registry

    spec = registry.get(model)
    built = spec.build(input_shape=input_shape, num_classes=num_classes, weights=weights)
    shape = "x".join(str(d) for d in built.input_shape[1:])
    click.echo(f"{spec.name} ({spec.family}, {spec.paper.venue} {spec.paper.year}), input {shape}, "
               f"{built.output_shape[-1]} classes")
    click.echo(complexity(built).table(per_layer=per_layer))


def evaluate_command(target: str, weights, dataset: Optional[str], batch_size: int) -> None:
    """Top-1 / top-5 (mean IoU for segmentation) on the dataset's full test split, and the model's cost."""
    from zoo import complexity
    from zoo.training.evaluation import load_run_or_model

    model, data, kind = load_run_or_model(target, weights, dataset)
    result = kind.evaluate(model, data, batch_size)
    cost = complexity(model)
    click.echo(
        f"{model.name} on {result['dataset']} test ({result['examples']:,} images): {kind.text(result)}\n"
        f"BOPs {cost.bops:.4g}, FLOPs {cost.flops:.4g}, OPs {cost.ops:.4g}, "
        f"params {cost.params:,}, memory {cost.memory_mbit:.3f} Mbit ({cost.memory_mb:.3f} MB)"
    )


def export_command(model: str, weights, out: str, input_shape, num_classes, num_images: int, threads: int,
                   format: str, precision: str, float_baseline: bool = True) -> None:
    """Convert MODEL (Larq Compute Engine or OpenVINO), write OUT and print the checks."""
    from zoo import registry
    from zoo.deployment import export
    from zoo.training.evaluation import sample_images

    spec = registry.get(model)
    raw = spec.kind.export_arguments
    built = spec.build(weights=weights, input_shape=input_shape, num_classes=num_classes, **raw)
    if raw:
        click.echo(f"{spec.name}: exporting the raw predictions (decode=False); decode them with "
                   "zoo.models.groupnet_fcos.FCOSDecode.")
    images, source = sample_images(built.input_shape[1:], num_images)
    report = export(built, out, images, format, threads, precision, float_baseline)
    click.echo(f"{spec.name} ({f'weights={weights}' if weights else 'random weights'}), input "
               f"{'x'.join(map(str, built.input_shape[1:]))}; parity on {source}")
    click.echo(report.summary())
    if not weights and report.top1_agreement < 1:
        click.echo("note: with random weights many pre-activations sit at a sign's tie (0), where "
                   "float rounding differs between Keras and the converted kernels; parity is "
                   "meaningful for trained weights (--weights).")
    if report.fallbacks:
        raise click.ClickException(f"{len(report.fallbacks)} binary layer(s) fell back to float ops: "
                                   f"{', '.join(report.fallbacks)}.")


def weights_list_command() -> None:
    """The weights index, a checkpoint per line."""
    from zoo import kinds
    from zoo import weights as weights_index

    click.echo(f"index: {weights_index.index_path()}")
    entries = weights_index.entries()
    t = max([len("tag"), *(len(e.tag) for e in entries)])
    head = (f"{'model':<17} {'tag':<{t}} {'top':<5} {'input':<9} {'score (%)':>12} {'epochs':>6} "
            f"{'MB':>5}  command")
    click.echo(head + "\n" + "-" * len(head))
    for e in entries:
        shape = "x".join(map(str, e.input_shape))
        epochs = f"{e.pretrain_epochs}+{e.epochs}" if e.pretrain_epochs else _fmt(e.epochs, "d")
        headline = kinds.get(e.kind).headline
        value = e.scores.get(headline.key)
        score = f"{headline.name} {100 * value:.2f}" if value is not None else "-"
        click.echo(f"{e.model:<17} {e.tag:<{t}} {'yes' if e.include_top else 'no':<5} {shape:<9} "
                   f"{score:>12} {epochs:>6} {e.size / 1e6:>5.1f}  {e.command}")


def weights_evaluate_command(models, limit: Optional[int]) -> None:
    """Every published checkpoint loaded through its constructor and measured now."""
    from zoo.training.publish import evaluate_published

    rows = evaluate_published(models, limit)
    t = max([len("tag"), *(len(r["tag"]) for r in rows)])
    head = (f"{'model':<17} {'tag':<{t}} {'index':>7} {'now':>7} {'images':>7} "
            f"{'OPs':>9} {'memory Mbit':>11}  metric")
    click.echo(head + "\n" + "-" * len(head))
    for r in rows:
        click.echo(f"{r['model']:<17} {r['tag']:<{t}} {100 * r['index_value']:>6.2f}% {100 * r['value']:>6.2f}% "
                   f"{r['examples']:>7,} {r['ops']:>9.3g} {r['memory_mbit']:>11.3f}  {r['metric']}")
    if not rows:
        click.echo("(no published checkpoint)")
    changed = 0
    for r in rows:
        if not r["full"] or r["same"]:
            continue
        what = f"{r['model']} {r['tag']}: {100 * r['value']:.4f}%, the index says {100 * r['index_value']:.4f}%"
        if r["index_numerics"] in (None, r["numerics"]):
            changed += 1
            click.echo(f"{what}, measured with the same {r['numerics']}: the checkpoint or the code changed.")
        else:
            click.echo(f"{what}: measured with {r['numerics']}, the index with {r['index_numerics']}, which round "
                       "near-ties differently (docs/weights.md, \"Other stacks\").")
    if changed:
        raise click.ClickException(f"{changed} published checkpoint(s) no longer score what the index says.")


def robustness_command(model: str, weights: str, twin: Optional[str], names, severities, seed: int,
                       limit: Optional[int], out: Optional[str]) -> None:
    """MODEL's score per corruption and severity, its mean, and its relative robustness."""
    import json

    from zoo import corruptions
    from zoo.io import ZooError, atomic_write_bytes
    from zoo.training import robustness

    names = tuple(names.split(",")) if names else corruptions.COMMON
    try:
        severities = tuple(int(s) for s in severities.split(",")) if severities else corruptions.SEVERITIES
    except ValueError:
        raise ZooError(f"--severities {severities} is not a comma-separated list of integers 0 to 5.") from None
    robustness.check(names, severities)
    twin = twin or robustness.twin_checkpoint(model, weights)
    built, kind, dataset = robustness.published(model, weights)
    models = [built]
    if twin:
        twin_model, twin_tag = twin.partition(":")[::2]
        twin_built, twin_kind, twin_dataset = robustness.published(twin_model, twin_tag)
        if twin_kind is not kind or type(twin_dataset) is not type(dataset):
            raise ZooError(f"--twin {twin} is a {twin_kind.name} model of {type(twin_dataset).__name__}; "
                           f"{model} is a {kind.name} model of {type(dataset).__name__}.")
        models.append(twin_built)
    results = robustness.measure(models, kind, dataset, names, severities, seed, limit,
                                 progress=lambda n, s: click.echo(f"  {n} {s}", err=True))
    labels = [f"{model}:{weights}", *([twin] if twin else [])]
    click.echo(f"{kind.headline.name} (%) on {type(dataset).__name__} test ({results[0].examples:,} images), "
               f"seed {seed}")
    head = f"{'corruption':<18}" + "".join(f"{s:>7}" for s in severities) + f"{'mean':>8}"
    for label, result in zip(labels, results):
        click.echo(f"\n{label}\n{head}\n" + "-" * len(head))
        for name, row in result.scores.items():
            click.echo(f"{name:<18}" + "".join(f"{100 * v:>7.2f}" for v in row) + f"{100 * sum(row) / len(row):>8.2f}")
        click.echo(f"clean {100 * result.clean:.2f}, mean corrupted {100 * result.mean:.2f}")
    record = {label: result.as_json() for label, result in zip(labels, results)}
    if twin:
        ratio = results[0].relative_to(results[1])
        record["relative_robustness"] = ratio
        click.echo(f"\nrelative robustness {ratio:.3f} (drop {100 * (results[0].clean - results[0].mean):.2f} "
                   f"vs the twin's {100 * (results[1].clean - results[1].mean):.2f}; below 1: more robust)")
    else:
        click.echo(f"\n{model} has no full-precision twin published on this dataset: pass --twin MODEL:TAG for "
                   "the relative robustness.")
    if out:
        atomic_write_bytes(out, (json.dumps(record, indent=1) + "\n").encode("utf-8"))


def build_cli() -> click.Group:
    """zookeeper's CLI group with every task registered, plus the zoo's commands."""
    from zookeeper import cli

    import zoo.training.recipes  # noqa: F401  (registers the Train* tasks)
    from zoo.training.datasets import DATASETS

    if "list" in cli.commands:
        return cli

    @cli.command("list")
    @click.option("--cost", is_flag=True, help="Also build each model and count its cost.")
    def _list(cost):
        """List the registered models."""
        list_command(cost)

    @cli.command("summary")
    @click.argument("model")
    @click.option("--input-shape", default=None, help="e.g. 28,28,1 (default: the model's).")
    @click.option("--num-classes", default=None, type=int)
    @click.option("--weights", default=None, help="A published tag or a weights file.")
    @click.option("--totals", is_flag=True, help="Only the totals, no per-layer table.")
    def _summary(model, input_shape, num_classes, weights, totals):
        """BOPs, FLOPs, OPs, parameters and memory of MODEL."""
        summary_command(model, _shape(input_shape), num_classes, weights, not totals)

    @cli.command("evaluate")
    @click.argument("target")
    @click.option("--weights", default=None, help="With a MODEL: a published tag or a weights file.")
    @click.option("--dataset", default=None, help=f"One of {', '.join(DATASETS)}.")
    @click.option("--batch-size", default=256, type=int)
    def _evaluate(target, weights, dataset, batch_size):
        """Evaluate a training run's output directory, or MODEL with --weights."""
        evaluate_command(target, weights, dataset, batch_size)

    @cli.command("export")
    @click.argument("model")
    @click.option("--weights", default=None, help="A published tag or a weights file (default: random).")
    @click.option("--out", required=True, help="The file to write: .tflite (lce) or .xml (openvino, with its .bin).")
    @click.option("--format", "format_", default="lce", show_default=True, type=click.Choice(["lce", "openvino"]),
                  help="Larq Compute Engine (64-bit ARM) or OpenVINO (x86, BinaryConvolution).")
    @click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "f32", "bf16"]),
                  help="OpenVINO's float part in the check (auto: bf16 on a CPU with AMX, else f32).")
    @click.option("--input-shape", default=None, help="e.g. 28,28,1 (default: the checkpoint's or the model's).")
    @click.option("--num-classes", default=None, type=int)
    @click.option("--images", "num_images", default=100, type=int, show_default=True,
                  help="Fashion-MNIST test images to compare the outputs on.")
    @click.option("--threads", default=1, type=int, show_default=True, help="Inference threads.")
    @click.option("--float-baseline/--no-float-baseline", default=True, show_default=True,
                  help="Also convert the network in float, to compare the sizes (the slower of the two conversions).")
    def _export(model, weights, out, format_, precision, input_shape, num_classes, num_images, threads,
                float_baseline):
        """Convert MODEL (Larq Compute Engine or OpenVINO) and check the file against Keras."""
        export_command(model, weights, out, _shape(input_shape), num_classes, num_images, threads, format_, precision,
                       float_baseline)

    @cli.command("robustness")
    @click.argument("model")
    @click.option("--weights", required=True, help="A published tag (zoo weights list).")
    @click.option("--twin", default=None, help="MODEL:TAG of the float twin (default: the registered twin's, "
                  "same tag).")
    @click.option("--corruptions", "names", default=None, help="Comma-separated (default: the 15 common ones).")
    @click.option("--severities", default=None, help="Comma-separated, 0 (none) to 5 (default: 1 to 5).")
    @click.option("--seed", default=0, type=int, show_default=True)
    @click.option("--limit", default=None, type=int, help="Only the first N test images.")
    @click.option("--json", "out", default=None, help="Also write the scores to this JSON file.")
    def _robustness(model, weights, twin, names, severities, seed, limit, out):
        """MODEL's score under image corruptions (ImageNet-C's, CIFAR-10-C's strengths)."""
        robustness_command(model, weights, twin, names, severities, seed, limit, out)

    @cli.group("weights")
    def _weights():
        """The weights index: list, publish and re-measure checkpoints."""

    @_weights.command("list")
    def _weights_list():
        """List the published checkpoints."""
        weights_list_command()

    @_weights.command("publish")
    @click.argument("run_dir")
    @click.option("--tag", default=None, help="Default: the dataset's (fashion_mnist, cifar10, imagenet).")
    @click.option("--url-base", default=None, help="Publish for download from this URL (https:// or file://).")
    @click.option("--out-dir", default=None, help="With --url-base: where to write the files to upload.")
    @click.option("--index", default=None, help="The index file to update (default: the one in use).")
    @click.option("--force", is_flag=True, help="Replace the model's checkpoints of the same tag.")
    def _weights_publish(run_dir, tag, url_base, out_dir, index, force):
        """Re-evaluate a finished run and add its checkpoints to the index."""
        from zoo import kinds
        from zoo.training.publish import publish

        for e in publish(run_dir, tag, url_base, out_dir, index, force):
            click.echo(f"published {e.model} weights=\"{e.tag}\" include_top={e.include_top}: "
                       f"{e.file or e.url} ({e.size / 1e6:.2f} MB, sha256 {e.sha256[:12]}...)"
                       + (f", {kinds.get(e.kind).text(e.scores)}" if e.include_top else ""))

    @_weights.command("evaluate")
    @click.argument("models", nargs=-1)
    @click.option("--limit", default=None, type=int, help="Only the first N test images.")
    def _weights_evaluate(models, limit):
        """Load every published checkpoint (or MODELS') and measure it on its test set."""
        weights_evaluate_command(models, limit)

    return cli


def explain(error: Exception) -> str:
    """One line for a user error; zookeeper's configuration errors get the valid choices."""
    import re

    from zoo import registry
    from zoo.training import datasets, optimizers, recipes

    message = str(error.args[0] if isinstance(error, KeyError) and error.args else error)
    first = message.split("\n\n")[0].strip()
    unknown = re.match(r"Key '([\w.]+)' does not correspond to any field of component '(\w+)'", first)
    if unknown:
        components = {**recipes.TASKS, **datasets.DATASETS, "Optimizer": optimizers.Optimizer,
                      **{spec.factory.__name__: spec.factory for spec in registry.list_models()}}
        component = components.get(unknown.group(2))
        fields = sorted(getattr(component, "__component_fields__", {}))
        return (f"{first} Its settings: {', '.join(fields)}; set a nested one with a dotted "
                "key, e.g. model.kernel_quantizer=ste_sign or optimizer.learning_rate=0.01.")
    if re.match(r"Field 'dataset' of component '\w+' is annotated with type", first):
        return f"{first} Datasets: {', '.join(datasets.DATASETS)}."
    raised = re.findall(r"^\s*(\w+(?:Error|Exception): .*)$", message, re.M)
    if first == "in user code:" and raised:  # raised in a traced function: its innermost error
        return f"{raised[-1].strip()} (in a traced TensorFlow function; ZOO_DEBUG=1 prints where)"
    return first


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the `zoo` console script."""
    from zoo.io import ZooError

    group = build_cli()
    args = list(sys.argv[1:] if argv is None else argv)
    sys.argv[1:] = args  # a run records its command from sys.argv (zoo.training.runs)
    try:
        group.main(args=args, prog_name="zoo", standalone_mode=False)
        return 0
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except (ZooError, ValueError, TypeError, FileNotFoundError, KeyError, ImportError) as e:
        if os.environ.get("ZOO_DEBUG"):
            raise
        click.secho(f"zoo: error: {explain(e)}", err=True, fg="red")
        return 2


if __name__ == "__main__":
    sys.exit(main())
