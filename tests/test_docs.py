"""The docs site: built with `mkdocs build --strict`, its generated pages checked
against the registry, zoo.complexity and the weights index, then opened in headless
Chromium (Debian's `chromium`, or ZOO_CHROMIUM) with a screenshot of each page."""
import functools
import html
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import zoo
from zoo import kinds, weights

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("ZOO_CHROMIUM", "/usr/bin/chromium")
# As the machine's notes advise: no background connections, nothing outside 127.0.0.1.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
                           cwd=ROOT, capture_output=True, text=True)
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stderr[-4000:]}"
    return out


def page(site, path):
    return (site / path / "index.html").read_text(encoding="utf-8")


def rows(text, name):
    """The HTML table rows that link to or name `name`."""
    pattern = rf"<tr>(?:(?!</tr>).)*?(?:>{name}</a>|<code>{name}</code>|<td>{name}</td>).*?</tr>"
    return [m.group(0) for m in re.finditer(pattern, text, re.S)]


def row(text, name):
    """The first HTML table row that links to or names `name`."""
    found = rows(text, name)
    assert found, f"no table row for {name}"
    return found[0]


def published_top():
    return [e for e in weights.entries() if e.include_top]


def test_overview_has_a_row_per_model_with_its_published_top1(site):
    overview = page(site, "models")
    for spec in zoo.list_models():
        assert (site / "models" / spec.name / "index.html").exists()
        cells = row(overview, spec.name)
        for e in published_top():
            if e.model == spec.name:
                assert e.tag in cells and f"{100 * e.scores[kinds.get(e.kind).headline.key]:.2f}%" in cells
        paper = next((r for r in spec.reported if r.source == "paper"), None)
        if paper:
            assert paper.value in cells
    assert "mIoU 65.1 (PASCAL VOC 2012)" in row(overview, "GroupNetFCN")


def test_model_page_per_layer_table_is_the_models_cost(site):
    text = page(site, "models/BiRealNet20")
    cost = zoo.complexity(zoo.BiRealNet20())
    counted = [l for l in cost.layers if l.bops or l.flops]
    assert len(counted) > 10
    for layer in counted:
        assert f"{layer.bops:,}" in row(text, layer.name) and f"{layer.flops:,}" in row(text, layer.name)
    assert f"{cost.params:,}" in text


def test_model_pages_give_each_checkpoint_its_command_and_curve(site):
    assert published_top(), "the weights index has no checkpoint"
    for e in published_top():
        text = html.unescape(re.sub(r"<[^>]+>", "", page(site, f"models/{e.model}")))  # highlighted code
        assert e.command in text and e.sha256[:12] in text and f'weights="{e.tag}"' in text
        assert f"{e.cost['ops']:.3e}".replace("e+0", "e") in text  # the checkpoint's own cost
        curve = (site / "models" / f"{e.model}-{e.tag}.svg").read_text(encoding="utf-8")
        assert "<svg" in curve and f"{100 * e.scores[kinds.get(e.kind).headline.key]:.2f}%" in curve


def test_pareto_plot_has_every_fashion_mnist_checkpoint(site):
    plot = (site / "models" / "pareto.svg").read_text(encoding="utf-8")
    points = [e for e in published_top() if e.dataset == "FashionMNIST"]
    assert points
    for e in points:
        assert e.model in plot
    assert plot.count('id="PathCollection_') == len(points)  # one scatter per checkpoint


@pytest.mark.parametrize("page_name, suite", [("training", "irnet_ablation"), ("training", "irnet_ede_start"),
                                             ("training", "groupnet_bases"), ("training", "precision"),
                                             ("training", "batch"), ("training", "distillation"),
                                             ("dense", "groupnet_dense")])
def test_suite_tables_are_the_suites_results(site, page_name, suite):
    text = html.unescape(page(site, page_name))
    path = ROOT / "benchmarks" / "results" / f"{suite}.json"
    if not path.exists():
        assert "Not measured yet" in text and f"benchmarks/train_table.py {suite}" in text
        return
    for r in json.loads(path.read_text(encoding="utf-8"))["rows"]:
        headline = zoo.get_model_spec(r["model"]).kind.headline.key
        assert any(f"{r[headline]:.2%}" in cells for cells in rows(text, re.escape(r["label"]))), r["label"]
    assert "<!-- zoo:" not in text


def test_paper_costs_and_math_are_generated(site):
    text = page(site, "complexity")
    cells = row(text, "BiRealNet18")
    assert "1.630e8" in cells  # the paper's OPs, from the registry
    assert f"{zoo.complexity(zoo.BiRealNet18()).ops:.3e}".replace("e+0", "e") in cells
    assert "<!-- zoo:" not in text
    quantizers = page(site, "quantizers")
    assert quantizers.count("<math") > 10 and "\\(" not in quantizers


def test_constructor_reference_has_every_section(site):
    text = page(site, "api/models")
    for spec in zoo.list_models():
        assert f'id="zoo.{spec.name}"' in text
    for section in ("Parameters:", "Returns:", "Raises:", "References"):
        assert text.count(section) >= len(zoo.list_models()), section


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: run `make browser` (Debian's chromium) or set ZOO_CHROMIUM.")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser, url, screenshot):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    tab.goto(url)
    tab.wait_for_load_state("load")
    tab.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    return tab


def image_rendered(tab, selector):
    return tab.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 100")


def test_overview_renders_in_chromium(browser, server, tmp_path):
    tab = open_page(browser, f"{server}/models/", tmp_path / "overview.png")
    first_table = tab.locator("article table").first
    assert first_table.is_visible()
    assert first_table.locator("tbody tr").count() == len(zoo.list_models())
    assert image_rendered(tab, "img[src$='pareto.svg']")
    box = tab.locator("img[src$='pareto.svg']").bounding_box()
    assert box["width"] > 300 and box["height"] > 150


def test_model_page_renders_in_chromium(browser, server, tmp_path):
    e = published_top()[0]
    tab = open_page(browser, f"{server}/models/{e.model}/", tmp_path / "model.png")
    assert tab.locator("article table").first.is_visible()
    assert image_rendered(tab, f"img[src$='{e.model}-{e.tag}.svg']")
    math = open_page(browser, f"{server}/quantizers/", tmp_path / "quantizers.png").locator("math").first
    assert math.bounding_box()["height"] > 5  # MathML laid out, no script needed
