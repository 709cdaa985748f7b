"""Which metric changes between a commit and the workspace are beyond noise?

    python scripts/metrics_diff.py [REV] [--md]          (make diff REV=HEAD~1 [MD=1])

Wraps `dvc metrics diff REV --json` (REV defaults to HEAD~1; compared with the workspace) and prints,
for each changed figure: file, key, old, new, change, the noise of that change and a mark:

  beyond noise    |change| > 2 x noise
  within noise    |change| <= 2 x noise
  noise unknown   no std beside the figure and no seed spread for its model
  not comparable  an FID/KID measured with two different backbones (see below)
  added / removed the figure exists on one side only

The noise of a change, for a figure `k` of metrics/<model>.json:

* sampling noise: the std that evaluate@<model> stores beside the figure as `k_std` (`fid_std`: bootstrap
  over both sample sets; `kid_std`: over KID's subsets; `baseline.fid` -> `baseline.fid_std`), read from
  both revisions (the old one with `git show REV:path`) and combined as sqrt(std_old^2 + std_new^2): the
  change is the difference of two independent estimates. Where only one side has it (an older metrics
  format), the other side is taken to be the same: sqrt(2) x std.
* seed spread: where metrics/seeds/<model>.json exists (scripts/seeds.py; the workspace's, else REV's),
  the std of the figure across K training seeds. Two single runs with different code or params differ
  by two draws of that spread, so it counts as sqrt(2) x seed_std.

Rule: noise = max(sampling, sqrt(2) x seed_std). Not their quadrature sum: each seed's run draws its
own samples (the sample seed follows the model seed), so the seed spread already contains the sampling
noise, and adding it again would count it twice. The larger of the two, because with K = 3 seeds the
seed std is itself uncertain by about +-50%, and the bootstrap then gives a floor that a lucky, small
seed spread cannot go below. The seed spread is that of the params it was measured with; after a big
change to a model it is an estimate, not a measurement: rerun scripts/seeds.py.

Rulers: FID and KID are distances in the features of a backbone (metrics/<model>.meta.json:
`"backbone": {"name", "path", "sha256"}`). If the backbone differs between the two revisions, the two
FIDs were measured with two rulers and their difference means nothing: a loud warning is printed and
those figures are marked `not comparable`. Where a side has no meta file the ruler cannot be checked
(a note says so).

`*_std` keys are not listed as changes of their own. Always exits 0 once the diff is printed (the marks
are for people, not for CI); 1 if `dvc metrics diff` itself fails (an unknown REV, say).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path, PurePosixPath

BEYOND, WITHIN, UNKNOWN, NOT_COMPARABLE, ADDED, REMOVED = (
    "beyond noise", "within noise", "noise unknown", "not comparable", "added", "removed")
THRESHOLD = 2.0  # a change beyond THRESHOLD x its noise is marked beyond noise
RULER_FIGURES = ("fid", "kid")  # figures measured in a backbone's features


# ---------------------------------------------------------------- pure functions ------------------------
def flatten(tree: dict, prefix: str = "") -> dict:
    """{"baseline": {"fid": 1}} -> {"baseline.fid": 1} (DVC's own key names)."""
    out = {}
    for key, value in (tree or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def sampling_noise(key: str, old: dict, new: dict) -> tuple[float | None, str]:
    """(noise of the change from the `<key>_std` of both sides, where it came from); old/new flattened."""
    stds = [s.get(f"{key}_std") for s in (old, new)]
    stds = [s for s in stds if is_number(s)]
    if len(stds) == 2:
        return math.hypot(*stds), "sampling std"
    if len(stds) == 1:
        return math.sqrt(2) * stds[0], "sampling std (one side)"
    return None, ""


def seed_std(key: str, seeds: dict | None) -> tuple[float | None, int]:
    """(std of `key` across training seeds, number of seeds) from a metrics/seeds/<model>.json document."""
    figure = ((seeds or {}).get("figures") or {}).get(key) or {}
    std = figure.get("std")
    return (std, len(figure.get("values") or [])) if is_number(std) else (None, 0)


def noise_of(key: str, old: dict, new: dict, seeds: dict | None = None) -> tuple[float | None, str]:
    """The noise of a change of `key`: max(sampling, sqrt(2) x seed std); (None, "") if neither is known."""
    sampling, source = sampling_noise(key, old, new)
    spread, k = seed_std(key, seeds)
    if spread is not None and (sampling is None or math.sqrt(2) * spread > sampling):
        return math.sqrt(2) * spread, f"seed spread (K={k})"
    return sampling, source


def mark(change: float, noise: float | None) -> str:
    if noise is None:
        return UNKNOWN
    return BEYOND if abs(change) > THRESHOLD * noise else WITHIN


def is_ruler_figure(key: str) -> bool:
    return key.split(".")[-1] in RULER_FIGURES


def backbone_of(meta: dict | None) -> dict | None:
    backbone = (meta or {}).get("backbone")
    return backbone if isinstance(backbone, dict) else None


def backbone_problem(old_meta: dict | None, new_meta: dict | None) -> tuple[bool, str | None]:
    """(the rulers differ, a message) for the two revisions' metrics/<model>.meta.json documents.

    Differ = a field of {name, path, sha256} differs; the sha256 is what matters (the same path can hold
    a retrained backbone). A side without a backbone: cannot be checked, said but not marked.
    """
    old, new = backbone_of(old_meta), backbone_of(new_meta)
    if old is None and new is None:
        return False, None
    if old is None or new is None:
        side = "REV" if old is None else "the workspace"
        return False, f"no backbone recorded in {side}: cannot check that FID/KID used the same ruler"
    fields = [f for f in ("name", "path", "sha256") if old.get(f) != new.get(f)]
    if not fields:
        return False, None
    said = "; ".join(f"{f}: {old.get(f)} -> {new.get(f)}" for f in fields)
    return True, (f"BACKBONE CHANGED ({said}). FID/KID of the two revisions are measured with two rulers "
                  "and cannot be compared")


def compare(path: str, changes: dict, old: dict, new: dict, seeds: dict | None = None,
            rulers_differ: bool = False) -> list[dict]:
    """Rows for one metrics file: `changes` is its entry of `dvc metrics diff --json` ({key: {old, new}}),
    `old`/`new` the whole metrics documents of both sides (for the stds), `seeds` its seed-spread file."""
    old, new = flatten(old), flatten(new)
    rows = []
    for key, change in sorted(changes.items()):
        if key.endswith("_std"):
            continue
        a, b = change.get("old"), change.get("new")
        if not (is_number(a) or is_number(b)):
            continue  # a name or a note, not a figure
        row = {"file": path, "key": key, "old": a, "new": b, "change": None, "noise": None, "source": "",
               "mark": ADDED if not is_number(a) else REMOVED}
        if is_number(a) and is_number(b):
            row["change"] = b - a
            row["noise"], row["source"] = noise_of(key, old, new, seeds)
            row["mark"] = NOT_COMPARABLE if rulers_differ and is_ruler_figure(key) else mark(b - a, row["noise"])
        rows.append(row)
    return rows


def fmt(value, signed: bool = False) -> str:
    if value is None:
        return "-"
    if not is_number(value):
        return str(value)
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def table(rows: list[dict], markdown: bool = False) -> str:
    from tabulate import tabulate

    header = ["file", "key", "old", "new", "change", "noise", "noise from", "mark"]
    body = [[r["file"], r["key"], fmt(r["old"]), fmt(r["new"]), fmt(r["change"], signed=True),
             fmt(r["noise"]), r["source"], r["mark"]] for r in rows]
    return tabulate(body, header, tablefmt="github" if markdown else "simple", disable_numparse=True)


# ---------------------------------------------------------------- reading the two revisions -------------
def read_json_at(rev: str | None, path: str) -> dict | None:
    """A json file in the workspace (rev None) or at a git revision; None where it does not exist."""
    if rev is None:
        p = Path(path)
        return json.loads(p.read_text()) if p.is_file() else None
    proc = subprocess.run(["git", "show", f"{rev}:./{path}"], check=False, capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def beside(path: str, suffix: str) -> str:
    """metrics/vae.json -> metrics/vae<suffix> (the meta file) ."""
    p = PurePosixPath(path)
    return str(p.with_name(p.stem + suffix))


def seeds_file(path: str) -> str:
    p = PurePosixPath(path)
    return str(p.parent / "seeds" / p.name)


def dvc_metrics_diff(rev: str) -> dict:
    proc = subprocess.run(["dvc", "metrics", "diff", rev, "--json"], check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"dvc metrics diff {rev} failed:\n{proc.stderr.strip()}")
    if proc.stderr.strip():  # e.g. "failed to load some metrics" where a file is missing on one side
        print(proc.stderr.strip(), file=sys.stderr)
    return json.loads(proc.stdout or "{}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/metrics_diff.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", nargs="?", default="HEAD~1", help="the git revision to compare with (HEAD~1)")
    parser.add_argument("--md", action="store_true", help="a markdown table")
    args = parser.parse_args(argv)

    diff = dvc_metrics_diff(args.rev)
    rows, warnings, notes = [], [], []
    for path, changes in sorted(diff.items()):
        if not isinstance(changes, dict):
            continue
        meta = beside(path, ".meta.json")
        differ, message = backbone_problem(read_json_at(args.rev, meta), read_json_at(None, meta))
        if message:
            (warnings if differ else notes).append(f"{path}: {message}")
        seeds = read_json_at(None, seeds_file(path)) or read_json_at(args.rev, seeds_file(path))
        rows += compare(path, changes, read_json_at(args.rev, path) or {}, read_json_at(None, path) or {},
                        seeds, differ)

    title = f"Metrics: {args.rev} -> workspace (beyond noise: |change| > {THRESHOLD:g} x noise)"
    print(f"**{title}**\n" if args.md else title + "\n")
    for warning in warnings:
        bar = "!" * 100
        print(f"{bar}\nWARNING {warning}\n{bar}\n" if not args.md else f"> **WARNING** {warning}\n")
    for note in notes:
        print(f"note: {note}" if not args.md else f"> note: {note}")
    if notes:
        print()
    print(table(rows, args.md) if rows else "No figure changed.")
    beyond = sum(r["mark"] == BEYOND for r in rows)
    if rows:
        print(f"\n{beyond} of {len(rows)} changed figures beyond noise.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
