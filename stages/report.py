"""report@<model> and summary: execute a report notebook with papermill, render it to a self-contained HTML page.

    python -m stages.report vae        # reports/vae.ipynb + reports/vae.html
    python -m stages.report summary    # reports/summary.ipynb + reports/summary.html + reports/results.md
    python -m stages.report world_models   # (stage wm_report) reports/world_models.ipynb + .html

A model's report is the template of its family's kind of samples, reports/templates/<images|points>.py,
followed by the family's own section, gdl/families/<family>/report.py, where there is one. Both are
jupytext percent-format files; the section's cells tagged `intro` go right after the template's cell
tagged `title` (what the model is, before its figures), its other cells after the template's body, and
the template's cells tagged `appendix` stay last. A model's report reads
    metrics/<model>.json, metrics/<model>.meta.json   (stage evaluate@<model>)
    models/<model>/history.json                       (stage train@<model>)
    samples/<model>.npz                               (stage sample@<model>)
The summary (reports/templates/summary.py) reads every metrics/<model>.json with its .meta.json, the
backbones' metrics/feature_extractor_<dataset>.json and, where present, metrics/seeds/<model>.json; it
also writes the results table as GitHub markdown (reports/results.md).

Run from the repository root (where params.yaml is); the notebook runs there too. The inputs are loaded
and checked before a kernel starts. Outputs are written atomically, and a failed run leaves none of its
outputs behind (stale ones included): exit status 1 and a message naming the bad input file and the
stage that writes it. Reruns on the same inputs give byte-identical outputs.
"""

from __future__ import annotations

import copy
import re
import sys
import time
from pathlib import Path

from gdl import reporting
from gdl.atomic import atomic_file
from stages.common import fail, model_args, params_or_exit

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "reports" / "templates"
OUT_DIR = Path("reports")
RESULTS_MD = OUT_DIR / "results.md"
SUMMARY = "summary"
WORLD_MODELS = "world_models"  # the chain of chapter 12 (stage wm_report), not a model of dvc.yaml's `models`
KERNEL = "python3"
CELL_TIMEOUT_S = 600
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": KERNEL}


class ReportError(RuntimeError):
    """A report could not be built; the message says which input to fix."""


# ---------------------------------------------------------------- notebooks from jupytext files ------
def read_cells(path: Path) -> list:
    """The cells of a jupytext percent-format file, ids stable (from the file's name and the position)
    and comment-only code cells dropped (a file may open with a comment saying what it is)."""
    import jupytext

    nb = jupytext.reads(path.read_text(encoding="utf-8"), fmt="py:percent")
    cells = [c for c in nb.cells if c.cell_type != "code" or any(
        line.strip() and not line.lstrip().startswith("#") for line in c.source.splitlines())]
    for i, cell in enumerate(cells):
        cell.id = f"{path.stem}-{i:02d}" if path.parent == TEMPLATES else f"{path.parent.name}-{i:02d}"
    return cells


def _tagged(cell, tag: str) -> bool:
    return tag in cell.metadata.get("tags", [])


def build_notebook(template: Path, section: Path | None = None):
    """The template's cells with the family section's woven in (see the module docstring)."""
    import nbformat

    cells = read_cells(template)
    if sum(_tagged(c, "parameters") for c in cells) != 1:
        raise ReportError(f"{_rel(template)}: needs exactly one cell tagged 'parameters'")
    appendix = [c for c in cells if _tagged(c, "appendix")]
    body = [c for c in cells if not _tagged(c, "appendix")]
    if section is not None:
        extra = read_cells(section)
        if any(_tagged(c, "parameters") for c in extra):
            raise ReportError(f"{_rel(section)}: a family section takes no parameters cell (the template has it)")
        intro = [c for c in extra if _tagged(c, "intro")]
        titles = [i for i, c in enumerate(body) if _tagged(c, "title")]
        if intro and not titles:
            raise ReportError(f"{_rel(template)}: no cell tagged 'title' to put {_rel(section)}'s intro after")
        at = titles[0] + 1 if titles else len(body)
        body = body[:at] + intro + body[at:] + [c for c in extra if not _tagged(c, "intro")]
    nb = nbformat.v4.new_notebook(cells=body + appendix)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    return nb


def template_files(inst) -> tuple[Path, Path | None]:
    return TEMPLATES / f"{inst.family.samples}.py", inst.family.report_section


# ---------------------------------------------------------------- normalisation and HTML -------------
def _rel(path: Path) -> str:
    for root in (Path.cwd().resolve(), REPO):
        try:
            return str(Path(path).resolve().relative_to(root))
        except ValueError:
            pass
    return str(path)


def normalize(nb, sources: list[Path], output_path: Path):
    """Drop what changes from run to run (timestamps, durations, random ids) so that reruns on the same
    inputs give the same notebook."""
    pm = nb.metadata.get("papermill", {})
    for key in ("start_time", "end_time", "duration", "exception"):
        pm.pop(key, None)
    pm["input_path"] = " + ".join(_rel(p) for p in sources)
    pm["output_path"] = str(output_path)
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if _tagged(cell, "injected-parameters"):
            cell.id = "injected-parameters"  # papermill draws a random id
        elif not cell.get("id"):
            cell.id = f"cell-{i:02d}"
    return nb


# nbconvert's "lab" page without the scripts it would fetch from a CDN (require.js, MathJax, mermaid):
# the reports use no widgets, no TeX beyond matplotlib's own and no diagrams, so the page is complete
# offline. Images are embedded as data: URIs and the CSS is inlined by the lab template itself.
PAGE_TEMPLATE = """\
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def to_html(nb, title: str) -> str:
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    # Readers want the figures, not the code: inputs are hidden (the .ipynb keeps them; each template's
    # first cell says so). Warnings on stderr stay in the .ipynb but are left out of the page.
    page = copy.deepcopy(nb)
    for cell in page.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    exporter = HTMLExporter(extra_loaders=[DictLoader({"gdl_report.html.j2": PAGE_TEMPLATE})],
                            template_file="gdl_report.html.j2",
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(page, resources={"metadata": {"name": title}})
    return body


# ---------------------------------------------------------------- running ---------------------------
def outputs_for(name: str) -> list[Path]:
    outs = [OUT_DIR / f"{name}.ipynb", OUT_DIR / f"{name}.html"]
    return outs + [RESULTS_MD] if name == SUMMARY else outs


def _remove(paths) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def execute(nb, parameters: dict):
    """Run the notebook in a fresh kernel in the current folder; the executed notebook, or a ReportError
    with the failing cell's error (and the input file it names)."""
    import os

    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    os.environ.setdefault("MPLBACKEND", "Agg")  # inherited by the kernel, for a section that uses pyplot
    try:
        return pm.execute_notebook(
            nb, None, parameters=parameters, kernel_name=KERNEL, cwd=str(Path.cwd()),  # None: nothing written
            progress_bar=False, log_output=False, request_save_on_cell_execute=False,
            execution_timeout=CELL_TIMEOUT_S,
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],  # no "TCP without encryption" noise
        )
    except PapermillExecutionError as exc:
        raise ReportError(explain(exc)) from None


def explain(exc) -> str:
    """The failing cell's error; for anything but a ReportInputError (which names the file and the stage
    that writes it) also the end of the traceback."""
    evalue = str(exc.evalue).strip()
    if exc.ename == "ReportInputError":
        return evalue
    tb = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(exc.traceback[-6:]))
    return f"notebook cell {exc.exec_count} raised {exc.ename}: {evalue}\ntraceback (end):\n{tb}"


def run_report(name: str, nb, sources: list[Path], parameters: dict, title: str) -> list[Path]:
    """Execute `nb` and write reports/<name>.ipynb and .html, both or neither (stale ones removed too)."""
    import nbformat

    outputs = outputs_for(name)
    nb_out, html_out = outputs[0], outputs[1]
    try:
        executed = normalize(execute(nb, parameters), sources, nb_out)
        with atomic_file(nb_out) as tmp_nb, atomic_file(html_out) as tmp_html:
            tmp_nb.write_text(nbformat.writes(executed) + "\n", encoding="utf-8")
            tmp_html.write_text(to_html(executed, title), encoding="utf-8")
    except BaseException:
        _remove(outputs)  # nothing stale may survive a failed run (the summary writes results.md itself)
        raise
    return outputs


def model_report(inst) -> list[Path]:
    template, section = template_files(inst)
    try:
        reporting.load_model_report(inst.name, inst.family.samples)  # fail before a kernel starts
    except reporting.ReportInputError as exc:
        _remove(outputs_for(inst.name))
        raise ReportError(str(exc)) from None
    parameters = {"model": inst.name, "family": inst.family.name, "title": inst.family.title}
    sources = [template] + ([section] if section else [])
    return run_report(inst.name, build_notebook(template, section), sources, parameters,
                      f"{inst.family.title}: {inst.name}")


def world_models_report() -> list[Path]:
    template = TEMPLATES / f"{WORLD_MODELS}.py"
    try:
        reporting.load_world_models_report()  # fail before a kernel starts
    except reporting.ReportInputError as exc:
        _remove(outputs_for(WORLD_MODELS))
        raise ReportError(str(exc)) from None
    return run_report(WORLD_MODELS, build_notebook(template), [template], {"model": WORLD_MODELS},
                      "World Models: CarRacing-v3")


def summary_report(metrics_dir: Path = Path("metrics")) -> list[Path]:
    template = TEMPLATES / "summary.py"
    try:
        reporting.load_results(metrics_dir)
    except reporting.ReportInputError as exc:
        _remove(outputs_for(SUMMARY))
        raise ReportError(str(exc)) from None
    parameters = {"metrics_dir": str(metrics_dir), "results_md": str(RESULTS_MD)}
    return run_report(SUMMARY, build_notebook(template), [template], parameters, "Results summary")


# ---------------------------------------------------------------- CLI -------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv == [SUMMARY]:
        stage = SUMMARY
        params_or_exit(stage)
        build = summary_report
    elif argv == [WORLD_MODELS]:
        stage = "wm_report"
        params_or_exit(stage)
        build = world_models_report
    else:
        inst, stage, _ = model_args("report", __doc__ + "\nOr `summary`: the results of every model; or `world_models`.", argv)
        build = lambda: model_report(inst)
    started = time.perf_counter()
    try:
        outputs = build()
    except ReportError as exc:
        fail(stage, str(exc))
    except Exception as exc:  # noqa: BLE001  kernel failed to start, died, timed out...
        fail(stage, f"{type(exc).__name__}: {exc}")
    print(f"{stage}: wrote {', '.join(map(str, outputs))} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
