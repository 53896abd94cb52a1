"""mkdocs hooks: the pages generated from the code, and math rendered as MathML.

mkdocs calls these at build time (`hooks:` in mkdocs.yml):

- `on_config` fills the nav's "Models" section with the registry's models, by family.
- `on_files` adds the generated pages: `models/index.md` (the overview table of every
  model and the plot of top-1 against OPs of the published Fashion-MNIST
  checkpoints), `models/<Model>.md` (constructor, cost per layer, checkpoints with
  the commands that made them and their training curves, the paper's numbers) and
  `api/models.md`. Facts come from `zoo.list_models()` (the registry),
  `zoo.complexity` and the weights index (`zoo.weights_index.entries()`); none is typed here.
- `on_page_content` turns arithmatex's `\\( \\)` and `\\[ \\]` spans into MathML, which
  browsers render without JavaScript or a network.
"""
import csv
import html
import importlib
import inspect
import io
import json
import re
import sys
from functools import lru_cache
from pathlib import Path

import latex2mathml.converter
from mkdocs.structure.files import File

import zoo
from zoo import kinds
from zoo import weights as weights_index

MODELS_DIR = "models"
FASHION_MNIST = "FashionMNIST"


# -- facts -------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def cost(name: str) -> zoo.Complexity:
    """The model's cost at its default input (built once per build)."""
    return zoo.complexity(zoo.get_model_spec(name).build())


def published(name: str, include_top: bool = True):
    return [e for e in weights_index.entries() if e.model == name and e.include_top == include_top]


def fashion_points():
    """Published Fashion-MNIST checkpoints with their classifier and a top-1."""
    return [e for e in weights_index.entries() if e.include_top and e.dataset == FASHION_MNIST and "top1" in e.scores]


def paper_result(spec):
    """The paper's ImageNet result for the default variant (the registry lists it first)."""
    return next((r for r in spec.reported if r.source == "paper"), None)


def defaults(spec) -> dict:
    """The constructor's keyword arguments and their defaults, in order."""
    return {p.name: p.default for p in inspect.signature(spec.constructor).parameters.values()}


def num_bases(spec):
    """K of a Group-Net model's constructor by default, else None."""
    return defaults(spec).get("num_bases")


def compression(c: zoo.Complexity) -> float:
    """Memory of the full-precision twin (every parameter 32 bits) over the model's."""
    return 32 * c.params / 1e6 / c.memory_mbit


# -- formatting --------------------------------------------------------------------------


def sci(value) -> str:
    """1676279808 -> 1.676e9; 0 -> 0."""
    if not value:
        return "0"
    mantissa, exponent = f"{value:.3e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def shape(s) -> str:
    return "x".join(str(d) for d in s)


def minutes(seconds) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def table(head, rows) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def tag_cell(entry) -> str:
    headline = kinds.get(entry.kind).headline
    name = "" if headline.key == "top1" else f"{headline.name} "
    return f"{entry.tag}: {name}{pct(entry.scores[headline.key])}"


def score_cells(entry) -> tuple:
    """(headline, second metric) of a checkpoint: top-1 and top-5 (numbers only), mIoU
    and pixel accuracy, or mAP@[.5:.95] and mAP@.5."""
    headline, second = kinds.get(entry.kind).scores[:2]
    if headline.key == "top1":
        return pct(entry.scores["top1"]), pct(entry.scores["top5"])
    return tuple(f"{m.name} {pct(entry.scores[m.key])}" for m in (headline, second))


# -- figures -----------------------------------------------------------------------------


def svg(fig) -> str:
    """A matplotlib figure as SVG text, reproducible from build to build."""
    import matplotlib.pyplot as plt

    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return out.getvalue()


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Text stays text (searchable, smaller files); hashsalt makes the ids reproducible.
    plt.rcParams.update({"svg.hashsalt": "binary-zoo", "svg.fonttype": "none", "font.size": 9})
    return plt


def history(entry):
    """The checkpoint's training curve: rows of the history CSV beside the index."""
    path = weights_index.index_path().parent / entry.history
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def curve_svg(entry) -> str:
    """Accuracy (mean IoU; a detector's loss) per epoch, train and validation, both
    stages of a two-stage recipe."""
    plt = pyplot()
    rows = history(entry)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    x = list(range(1, len(rows) + 1))
    kind = kinds.get(entry.kind)
    for column, style, label in ((kind.curve, "--", "train"), (f"val_{kind.curve}", "-", "validation")):
        ax.plot(x, [kind.curve_scale * float(r[column]) for r in rows], style, label=label)
    stages = [r["stage"] for r in rows]
    if "pretrain" in stages and "train" in stages:
        boundary = stages.index("train") + 0.5
        ax.axvline(boundary, color="gray", lw=0.8)
        ax.annotate(" stage 2 (binary)", (boundary, ax.get_ylim()[0]), color="gray", va="bottom")
    ax.set(xlabel="epoch", ylabel=kind.curve_label,
           title=f"{entry.model} on {entry.dataset} ({entry.tag}): {kind.headline.name} "
                 f"{pct(entry.scores[kind.headline.key])} at the end")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right" if kind.curve == "loss" else "lower right")
    return svg(fig)


def pareto_svg(points) -> str:
    """Top-1 against OPs (log scale), each checkpoint labelled, the Pareto front drawn."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for e in points:
        ax.scatter(e.cost["ops"], 100 * e.scores["top1"], zorder=3)
        label = e.model if e.tag == "fashion_mnist" else f"{e.model} ({e.tag})"
        ax.annotate(label, (e.cost["ops"], 100 * e.scores["top1"]), textcoords="offset points", xytext=(5, 4))
    front, best = [], float("-inf")
    for e in sorted(points, key=lambda e: e.cost["ops"]):
        if e.scores["top1"] > best:
            front.append(e)
            best = e.scores["top1"]
    ax.step([e.cost["ops"] for e in front], [100 * e.scores["top1"] for e in front], where="post",
            color="gray", lw=0.8, label="Pareto front")
    ax.set_xscale("log")
    ax.set(xlabel="OPs (BOPs / 64 + FLOPs), 28x28x1 input", ylabel="top-1 on the 10,000 test images (%)",
           title="Published Fashion-MNIST checkpoints: accuracy against cost")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    return svg(fig)


# -- pages -------------------------------------------------------------------------------


def overview_page(specs) -> str:
    rows = []
    for spec in specs:
        c, reported = cost(spec.name), paper_result(spec)
        rows.append([
            f"[{spec.name}]({spec.name}.md)",
            spec.family,
            num_bases(spec) or "-",
            shape(spec.default_input_shape),
            ", ".join(tag_cell(e) for e in published(spec.name)) or "-",
            (reported.value + ("" if reported.dataset == "ImageNet" else f" ({reported.dataset})"))
            if reported else "-",
            sci(c.bops), sci(c.flops), sci(c.ops), f"{c.params:,}",
            f"{c.memory_mbit:.2f} / {c.memory_mb:.2f}",
            f"{compression(c):.1f}x",
        ])
    return "\n".join([
        "---", "hide:", "  - toc", "---",  # the wide table gets the page's width
        "# Models",
        "",
        "Every registered model, generated from the registry, `zoo.complexity` and the "
        "weights index when the site is built. Cost is counted at the model's default "
        "input (the *input* column) with its default options (Group-Net: K bases in the "
        "*bases* column); a checkpoint's own cost, at its input, is on the model's page. "
        "*Compression* is the memory of the same network with every parameter in 32 bits "
        "over this one's. Paper results are the papers' own numbers, not measured here: "
        "ImageNet top-1 / top-5 (%) unless another dataset is named. See [Counting BOPs and OPs](../complexity.md).",
        "",
        table(["model", "paper", "bases", "input", "published top-1", "paper result",
               "BOPs", "FLOPs", "OPs", "params", "memory Mbit / MB", "compression"], rows),
        "## Accuracy against cost",
        "",
        "Every published Fashion-MNIST checkpoint (top-1 on the 10,000 test images, from "
        "the weights index) against its OPs at 28x28x1, the view BNN papers use; the gray "
        "line is the Pareto front.",
        "",
        '![Top-1 against OPs of the published Fashion-MNIST checkpoints](pareto.svg){ #pareto }'
        if fashion_points() else "No checkpoint is published yet.",
        "",
    ])


def cost_section(spec) -> str:
    c = cost(spec.name)
    totals = table(["BOPs", "FLOPs", "OPs", "params (binary / full precision)", "memory", "compression"], [[
        sci(c.bops), sci(c.flops), sci(c.ops), f"{c.params:,} ({c.binary_params:,} / {c.float_params:,})",
        f"{c.memory_mbit:.2f} Mbit = {c.memory_mb:.2f} MB", f"{compression(c):.1f}x",
    ]])
    layers = table(
        ["layer", "kind", "output", "BOPs", "FLOPs", "binary params", "fp params"],
        [[f"`{l.name}`", l.kind, shape(l.output_shape[1:]), f"{l.bops:,}", f"{l.flops:,}",
          f"{l.binary_params:,}", f"{l.float_params:,}"]
         for l in c.layers if l.bops or l.flops or l.binary_params or l.float_params],
    )
    return "\n".join([
        f"## Cost at {shape(spec.default_input_shape)}, {spec.default_num_classes} classes",
        "",
        totals,
        downsampling_note(spec),
        f"`zoo summary {spec.name}` prints the same table; `zoo.complexity(model)` returns it.",
        "",
        '??? note "Per layer"',
        "",
        "    " + layers.replace("\n", "\n    "),
    ])


def downsampling_note(spec) -> str:
    """Group-Net's two downsampling structures, both counted, and the checkpoints' one."""
    if "shared_downsample" not in defaults(spec):
        return ""
    own, shared = cost(spec.name), zoo.complexity(spec.build(shared_downsample=True))
    used = sorted({e.options.get("shared_downsample", False) for e in published(spec.name)})
    checkpoints = {(): "", (False,): " The published checkpoints use their own per base.",
                   (True,): " The published checkpoints use the shared one."}.get(tuple(used), "")
    return (f"\nDownsampling: each base its own binary 1x1 convolution and BN (the default): "
            f"{own.params:,} parameters; one per stage shared by all bases (`shared_downsample=True`, "
            f"the official code's): {shared.params:,}; the same BOPs ({sci(shared.bops)}).{checkpoints}\n")


def checkpoints_section(spec) -> str:
    top, notop = published(spec.name), {e.tag for e in published(spec.name, include_top=False)}
    if not top:
        return "\n".join([
            "## Checkpoints", "",
            f"None published yet (`weights=\"imagenet\"` raises an error that says so). "
            f"Train one with `zoo {spec.task}`; `zoo weights publish RUN_DIR` adds it to the index.", "",
        ])
    rows = [[f"`{e.tag}`", e.dataset, shape(e.input_shape), e.num_classes, *score_cells(e),
             f"{e.pretrain_epochs} + {e.epochs}" if e.pretrain_epochs else e.epochs,
             minutes(e.wall_time_seconds), sci(e.cost.get("ops")), f"{e.cost.get('memory_mbit', 0):.2f}",
             f"{e.size / 1e6:.2f} MB", "yes" if e.tag in notop else "no", f"`{e.sha256[:12]}`"] for e in top]
    parts = [
        "## Checkpoints", "",
        "Scores on the full test split (top-1 and top-5; mIoU and pixel accuracy for "
        "segmentation; mAP@[.5:.95] and mAP@.5 for detection), measured by `zoo weights "
        "publish` from the run's own weights; wall time is the sum of the run's epoch times. "
        "The curves' validation split is, for Fashion-MNIST, the 10,000 test images.", "",
        table(["tag", "dataset", "input", "classes", "score", "second score", "epochs", "wall time",
               "OPs at its input", "Mbit", "size", "no-top file", "sha256"], rows),
    ]
    arguments = defaults(spec)
    for e in top:  # the constructor arguments a tag sets away from their defaults
        options = ", ".join(f"{k}={v!r}" for k, v in e.options.items() if k in arguments and arguments[k] != v)
        parts += [
            f"### `{e.tag}`", "",
            "```python",
            f'model = zoo.{spec.name}(weights="{e.tag}")' + (f"  # builds {options}" if options else ""),
            "```", "",
            f"Made by this command at commit `{(e.git_commit or '-')[:10]}` on {e.date} ({e.machine}):", "",
            "```bash", e.command or "-", "```", "",
        ]
        if e.history:
            parts += [f"![Training curve of {spec.name} {e.tag}]({spec.name}-{e.tag}.svg){{ .curve }}", ""]
    return "\n".join(parts)


def robustness_section(spec) -> str:
    """The robustness track's result for the model's checkpoints (benchmarks/robustness.py)."""
    path = BENCHMARKS / "results" / "robustness.json"
    tags = [e.tag for e in published(spec.name)]
    if not tags:
        return ""
    if not path.exists():
        return "## Robustness\n\nNot measured yet: run `.venv/bin/python benchmarks/robustness.py`.\n"
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    script, result = importlib.import_module("robustness"), json.loads(path.read_text(encoding="utf-8"))
    images = f"the first {result['limit']:,} images of the test split" if result["limit"] else "the test split"
    parts = ["## Robustness", "",
             f"Scores on {images} under the corruptions of `zoo.corruptions` (ImageNet-C's, with "
             "CIFAR-10-C's strengths) at severities 1 to 5, against the float network of the same backbone; see "
             "[Benchmarks](../benchmarks.md#robustness). `zoo robustness "
             f"{spec.name} --weights TAG` measures it.", ""]
    for row in result["rows"]:
        if row["model"] != spec.name or row["tag"] not in tags:
            continue
        label = f"{spec.name}:{row['tag']}"
        ratio = row["relative_robustness"]
        parts += [f"### `{row['tag']}`", "",
                  f"Relative robustness {ratio:.3f} against {row['twin']} (below 1: it loses less than "
                  "the float network)." if ratio is not None else "No float twin published: no relative robustness.",
                  "", script.model_table(result, label), "",
                  svg(script.severity_figure(result, [label, *filter(None, [row["twin"]])], pyplot())), ""]
    return "\n".join(parts)


def paper_section(spec) -> str:
    p = spec.paper
    rows = [[r.dataset, r.value, r.note or "-", r.source,
             sci(r.ops) if r.ops else "-", r.memory_mbit or "-"] for r in spec.reported]
    return "\n".join([
        "## The paper", "",
        f"{p.authors}. [*{p.title}*]({p.url}). {p.venue} {p.year}.", "",
        table(["dataset", "result (%, top-1 / top-5 or mIoU)", "variant", "source", "OPs", "Mbit"], rows) if rows else
        "The paper reports no result for this layout; it is the zoo's small-image variant.",
        "",
        '??? quote "BibTeX"', "",
        "    ```bibtex", "    " + p.bibtex.replace("\n", "\n    "), "    ```", "",
    ])


def signature(spec) -> str:
    """The constructor's signature, one argument per line."""
    lines = ["    *,"] + [f"    {name}={default!r}," for name, default in defaults(spec).items()]
    return "\n".join([f"zoo.{spec.name}("] + lines + [")"])


def model_page(spec) -> str:
    return "\n".join([
        f"# {spec.name}", "",
        f"{spec.description.rstrip('.')}. {spec.family} ({spec.paper.venue} {spec.paper.year}).", "",
        "```python", signature(spec), "```", "",
        f"Train it with `zoo {spec.task}` (every setting is a `key=value` override); "
        "see [Training](../training.md). Arguments are in the [API reference](../api/models.md"
        f"#zoo.{spec.name}).", "",
        cost_section(spec), "",
        checkpoints_section(spec),
        robustness_section(spec),
        paper_section(spec),
    ])


def paper_costs_table() -> str:
    """Every paper cost figure in the registry beside the counter's."""
    rows = []
    for spec in zoo.list_models():
        for r in spec.reported:
            if r.ops or r.memory_mbit:
                c = cost(spec.name)
                rows.append([spec.name, shape(spec.default_input_shape), sci(c.bops), sci(c.flops),
                             sci(r.ops), sci(c.ops), r.memory_mbit, f"{c.memory_mbit:.2f}"])
    return table(["model", "input", "BOPs", "FLOPs", "OPs (paper)", "OPs (counted)",
                  "Mbit (paper)", "Mbit (counted)"], rows)


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def bench_section(name: str) -> str:
    """A benchmark's latest result file, rendered by its own script, with provenance."""
    if not (BENCHMARKS / "results" / f"{name}.json").exists():
        return f"Not measured yet: run `.venv/bin/python benchmarks/{name}.py` (or `make bench`)."
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    script, common = importlib.import_module(name), importlib.import_module("common")
    result = common.read_result(name)
    m = result["machine"]
    openvino = f", OpenVINO {m['openvino']}" if m.get("openvino") else ""
    return "\n".join([
        script.render(result), "",
        *([svg(script.figure(result, pyplot())), ""] if hasattr(script, "figure") else []),
        f"Measured on {m['date']} on {m['cpu']} ({m['cores']} cores, {m['system']}), TensorFlow "
        f"{m['tensorflow']}, larq {m['larq']}, Larq Compute Engine {m['larq_compute_engine']}{openvino}, by "
        f"`{result['command']}`"
        + (" (the other checkpoints' rows kept from earlier runs: each records the sha256 of the file it "
           "measured, the one published now)." if "--models" in result["command"] else "."), "",
    ])


def suite_section(suite: str) -> str:
    """A `benchmarks/train_table.py` suite's latest result, rendered by that script."""
    path = BENCHMARKS / "results" / f"{suite}.json"
    if not path.exists():
        return f"Not measured yet: run `.venv/bin/python benchmarks/train_table.py {suite} ...`."
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module("train_table").table(json.loads(path.read_text(encoding="utf-8"))) + "\n"


# Markers in hand-written pages, replaced by generated text.
GENERATED = {"<!-- zoo:paper-costs -->": paper_costs_table}
BENCH_MARKER = re.compile(r"<!-- zoo:bench:(\w+) -->")
SUITE_MARKER = re.compile(r"<!-- zoo:suite:(\w+) -->")


def api_models_page(specs) -> str:
    parts = ["# Model constructors", "",
             "Keyword-only, in the keras.applications style. Generated from the registry.", ""]
    for spec in specs:
        parts += [f"::: zoo.{spec.name}", ""]
    return "\n".join(parts)


# -- mkdocs glue -------------------------------------------------------------------------


def families(specs):
    grouped = {}
    for spec in specs:
        grouped.setdefault(spec.family, []).append(spec)
    return grouped


def on_config(config):
    specs = zoo.list_models()
    section = [{"Overview": f"{MODELS_DIR}/index.md"}] + [
        {family: [{spec.name: f"{MODELS_DIR}/{spec.name}.md"} for spec in members]}
        for family, members in families(specs).items()
    ]
    config.nav = [{"Models": section} if item == {"Models": f"{MODELS_DIR}/index.md"} else item
                  for item in config.nav]
    return config


def on_files(files, config):
    specs = zoo.list_models()
    pages = {f"{MODELS_DIR}/index.md": overview_page(specs), "api/models.md": api_models_page(specs)}
    for spec in specs:
        pages[f"{MODELS_DIR}/{spec.name}.md"] = model_page(spec)
        for e in published(spec.name):
            if e.history:
                pages[f"{MODELS_DIR}/{spec.name}-{e.tag}.svg"] = curve_svg(e)
    if fashion_points():
        pages[f"{MODELS_DIR}/pareto.svg"] = pareto_svg(fashion_points())
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    return files


def on_page_markdown(markdown, page, config, files):
    for marker, generate in GENERATED.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    markdown = SUITE_MARKER.sub(lambda m: suite_section(m.group(1)), markdown)
    return BENCH_MARKER.sub(lambda m: bench_section(m.group(1)), markdown)


MATH = re.compile(r'<(span|div) class="arithmatex">\s*\\[\(\[](.*?)\\[\)\]]\s*</\1>', re.S)


def on_page_content(content, page, config, files):
    def mathml(match):
        display = "block" if match.group(1) == "div" else "inline"
        return latex2mathml.converter.convert(html.unescape(match.group(2)), display=display)

    return MATH.sub(mathml, content)
