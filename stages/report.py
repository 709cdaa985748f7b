"""Report stage: execute a report notebook with papermill and render it to a self-contained HTML page.

    python -m stages.report vae        # reports/vae.ipynb + reports/vae.html
    python -m stages.report realnvp    # reports/realnvp.ipynb + reports/realnvp.html
    python -m stages.report summary    # reports/summary.ipynb + reports/summary.html + reports/results.md

A family report reads
    metrics/<family>.json          (stage evaluate@<family>)
    models/<family>/history.json   (stage train@<family>)
    samples/<family>.npz           (stage sample@<family>)
and runs reports/templates/<family>.ipynb, or the generic reports/templates/family.ipynb for a family
without its own template (the generic one does not need the samples file). The summary reads every
metrics/*.json and also writes the results table as GitHub markdown (reports/results.md).

Run from the repository root (where params.yaml is); the notebook runs there too. Outputs are written
atomically, and a failed run leaves none of its outputs behind (stale ones included): exit status 1 and
a message naming the bad input file and the stage that writes it.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from stages.common import params_or_exit

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "reports" / "templates"
GENERIC_TEMPLATE = "family"
OUT_DIR = Path("reports")
RESULTS_MD = OUT_DIR / "results.md"
KERNEL = "python3"
CELL_TIMEOUT_S = 600

TITLES = {"vae": "Variational autoencoder", "realnvp": "RealNVP normalizing flow", "summary": "Results summary"}


class ReportError(RuntimeError):
    """A report could not be built; the message says which input to fix."""


@dataclass(frozen=True)
class Input:
    parameter: str  # notebook parameter that receives the path
    path: Path
    producer: str  # the DVC stage that writes it
    required: bool = True


def inputs_for(name: str, template: str) -> list[Input]:
    if name == "summary":
        return [Input("metrics_dir", Path("metrics"), "evaluate@<family>")]
    return [
        Input("metrics_path", Path("metrics") / f"{name}.json", f"evaluate@{name}"),
        Input("history_path", Path("models") / name / "history.json", f"train@{name}"),
        Input("samples_path", Path("samples") / f"{name}.npz", f"sample@{name}", required=template != GENERIC_TEMPLATE),
    ]


def metrics_producer(stem: str) -> str:
    """The dvc.yaml stage that writes metrics/<stem>.json (kept in step with the notebooks' helper)."""
    if stem.startswith("feature_extractor_"):
        return f"feature_extractor@{stem[len('feature_extractor_'):]}"
    return f"evaluate@{stem}"


def outputs_for(name: str) -> list[Path]:
    outs = [OUT_DIR / f"{name}.ipynb", OUT_DIR / f"{name}.html"]
    return outs + [RESULTS_MD] if name == "summary" else outs


def template_for(name: str, templates: Path) -> str:
    if name == "summary" or (templates / f"{name}.ipynb").is_file():
        return name
    return GENERIC_TEMPLATE


# ---------------------------------------------------------------- input checks ----------------------
def _fix(inp: Input) -> str:
    return f"written by stage {inp.producer}; run `dvc repro {inp.producer}`" if "<" not in inp.producer else \
        f"written by the {inp.producer} stages; run `dvc repro`"


def check_inputs(inputs: list[Input]) -> None:
    """Fail fast, before a kernel starts, on a missing, empty or unreadable input file."""
    for inp in inputs:
        p = inp.path
        if inp.parameter == "metrics_dir":
            if not p.is_dir() or not sorted(p.glob("*.json")):
                raise ReportError(f"{p}/: no *.json metrics files ({_fix(inp)})")
            for f in sorted(p.glob("*.json")):
                _check_json(f, Input(inp.parameter, f, metrics_producer(f.stem)))
            continue
        if not p.exists():
            if inp.required:
                raise ReportError(f"{p}: not found ({_fix(inp)})")
            continue
        if not p.is_file() or p.stat().st_size == 0:
            raise ReportError(f"{p}: empty or not a file ({_fix(inp)})")
        if p.suffix == ".json":
            _check_json(p, inp)
        elif p.suffix == ".npz":
            import zipfile

            if not zipfile.is_zipfile(p):
                raise ReportError(f"{p}: not an .npz archive ({_fix(inp)})")


def _check_json(path: Path, inp: Input) -> None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not valid JSON: {exc} ({_fix(inp)})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object, got {type(data).__name__} ({_fix(inp)})")


# ---------------------------------------------------------------- notebook handling -----------------
def _rel(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(REPO))
    return str(path)


def normalize(nb, template_path: Path, output_path: Path):
    """Drop what changes from run to run (timestamps, durations, temp paths) so that reruns on the same
    inputs give the same notebook."""
    pm = nb.metadata.get("papermill", {})
    for key in ("start_time", "end_time", "duration", "exception"):
        pm.pop(key, None)
    pm["input_path"] = _rel(template_path)
    pm["output_path"] = str(output_path)
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"  # papermill draws a random id
        elif not cell.get("id"):
            cell.id = f"cell-{i:02d}"
    return nb


# nbconvert's "lab" page without the scripts it would fetch from a CDN (require.js, MathJax, mermaid):
# the templates use no widgets, no TeX and no diagrams, so the page is complete offline. Images are
# embedded as data: URIs and the CSS is inlined by the lab template itself.
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
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    exporter = HTMLExporter(extra_loaders=[DictLoader({"gdl_report.html.j2": PAGE_TEMPLATE})],
                            template_file="gdl_report.html.j2",
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(page, resources={"metadata": {"name": title}})
    return body


def _write_atomic(path: Path, text: str) -> Path:
    """Write next to `path` (same file system) and return the temp path; the caller os.replace()s it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    return tmp


def _remove(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def run_report(name: str, templates: Path = TEMPLATES) -> list[Path]:
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    template = template_for(name, templates)
    template_path = templates / f"{template}.ipynb"
    if not template_path.is_file():
        raise ReportError(f"{template_path}: template not found (regenerate: python reports/templates/make_templates.py)")
    inputs = inputs_for(name, template)
    try:
        check_inputs(inputs)
    except ReportError:
        _remove(*outputs_for(name))  # stale outputs would no longer match their inputs
        raise

    parameters = {inp.parameter: str(inp.path) for inp in inputs}
    if name == "summary":
        parameters["results_md"] = str(RESULTS_MD)
    else:
        parameters["family"] = name

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    nb_out, html_out = OUT_DIR / f"{name}.ipynb", OUT_DIR / f"{name}.html"
    executed = OUT_DIR / f".{name}.executing-{os.getpid()}.ipynb"  # papermill writes here, even on failure
    temps: list[Path] = [executed]
    os.environ.setdefault("MPLBACKEND", "Agg")  # inherited by the kernel
    try:
        try:
            pm.execute_notebook(
                str(template_path), str(executed), parameters=parameters, kernel_name=KERNEL, cwd=str(Path.cwd()),
                progress_bar=False, log_output=False, request_save_on_cell_execute=False,
                execution_timeout=CELL_TIMEOUT_S,
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],  # no "TCP without encryption" noise
            )
        except PapermillExecutionError as exc:
            raise ReportError(_explain(exc, inputs)) from None
        nb = normalize(nbformat.read(executed, as_version=4), template_path, nb_out)
        temps.append(_write_atomic(nb_out, nbformat.writes(nb) + "\n"))
        temps.append(_write_atomic(html_out, to_html(nb, TITLES.get(name, f"Report: {name}"))))
        os.replace(temps[1], nb_out)
        os.replace(temps[2], html_out)
    except BaseException:
        # Nothing half-made or stale may survive a failed run (the summary notebook writes results.md itself).
        _remove(*temps, *outputs_for(name))
        raise
    finally:
        _remove(*temps)
    return outputs_for(name)


def _explain(exc, inputs: list[Input]) -> str:
    """The failing cell's error, plus the inputs it may be about."""
    evalue = str(exc.evalue).strip()
    lines = [f"notebook cell {exc.exec_count} raised {exc.ename}: {evalue}"]
    named = [inp for inp in inputs if str(inp.path) in evalue]
    if exc.ename == "ReportInputError" and named:
        lines.append(f"bad input: {named[0].path} ({_fix(named[0])})")
    else:
        lines.append("inputs: " + ", ".join(f"{inp.path} ({inp.producer})" for inp in inputs))
        if exc.ename != "ReportInputError":
            tb = "\n".join(exc.traceback[-6:])
            lines.append("traceback (end):\n" + re.sub(r"\x1b\[[0-9;]*m", "", tb))
    return "\n".join(lines)


# ---------------------------------------------------------------- CLI -------------------------------
def known_reports(templates: Path = TEMPLATES) -> list[str]:
    return sorted(p.stem for p in templates.glob("*.ipynb") if p.stem != GENERIC_TEMPLATE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stages.report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Reports with a dedicated template: {', '.join(known_reports()) or '(none)'}; any other family "
               f"name uses reports/templates/{GENERIC_TEMPLATE}.ipynb.")
    parser.add_argument("name", help="a model family (vae, realnvp, ...) or 'summary'")
    parser.add_argument("--templates", type=Path, default=TEMPLATES, help="template folder (default: %(default)s)")
    args = parser.parse_args(argv)

    stage = "summary" if args.name == "summary" else f"report@{args.name}"  # as named in dvc.yaml
    params_or_exit(stage)

    if not re.fullmatch(r"[a-z][a-z0-9_]*", args.name):
        parser.error(f"invalid report name {args.name!r}: expected a family name like 'vae' or 'summary'")
    started = time.perf_counter()
    try:
        outputs = run_report(args.name, args.templates)
    except ReportError as exc:
        print(f"error in stage {stage}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # kernel failed to start, died, timed out...
        print(f"error in stage {stage}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"{stage}: wrote {', '.join(map(str, outputs))} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
