# ruff: noqa: F821  (runs in the template's kernel, where R, report and model are defined)
# The diffusion model's own section of its report (jupytext percent format): cells tagged "intro" follow the
# title of reports/templates/images.py, the others come after the template's samples and memorisation check.

# %% [markdown] tags=["intro"]
# A diffusion model (book chapter 8) learns to *remove noise*. Training takes a digit, mixes it with Gaussian
# noise at a random level, and asks a U-Net for the noise that was added (its mean absolute error is the
# loss). The U-Net sees the noisy image, the noise level (as a sinusoidal embedding) and the digit's label,
# which is replaced by a "null" label some of the time, so the same network also learns to denoise without
# being told the class. Generating starts from pure noise and removes the predicted noise step by step with
# the DDIM sampler (Song et al. 2020): with `eta` = 0 every step is deterministic, so one noise image gives
# one digit, and a handful of steps already give digits; with `eta` = 1 fresh noise is added back at every
# step, as in the original DDPM. Asking for a class mixes the two predictions, classifier-free guidance
# (Ho & Salimans 2022): e = e(x, null) + w (e(x, label) - e(x, null)), so w = 0 ignores the label, w = 1 is
# the plain conditional model and w > 1 exaggerates what makes the image that class. The samples above are
# unconditional (w = 0). The step sweep and guidance figures are in the metrics file's `steps` and
# `guidance` sections, drawn below.

# %% [markdown]
# ## The noise schedule
#
# At diffusion time t the network sees s(t) x + n(t) e with s^2 + n^2 = 1. The *offset cosine* schedule
# moves the angle between signal and noise linearly, so the signal fades slowly at both ends, and clips it:
# the signal rate goes from 0.95 (never a clean image) at t = 0 to 0.02 (never pure noise) at t = 1, where
# a plain cosine would reach 1 and 0 and make the ends degenerate.

# %%
import numpy as np

schedule = report.meta.get("schedule", {"min_signal_rate": 0.02, "max_signal_rate": 0.95})
t = np.linspace(0, 1, 101)
start, end = np.arccos(schedule["max_signal_rate"]), np.arccos(schedule["min_signal_rate"])
angle = start + t * (end - start)
fig, ax = R.subplots(5.5, 2.8)
ax.plot(t, np.cos(angle), label="signal rate s(t)")
ax.plot(t, np.sin(angle), label="noise rate n(t)")
ax.plot(t, np.cos(angle) ** 2, "--", color="tab:blue", alpha=0.5, label="signal power s(t)²")
ax.set(xlabel="diffusion time t", ylabel="rate", title="offset cosine schedule")
ax.legend(fontsize=8)
R.show(fig)
flops = report.meta.get("forward_flops")
if flops:
    R.say(f"One forward pass of the U-Net costs {flops / 1e6:.0f} MFLOPs per image; a sample costs that "
          f"times the number of steps (twice with guidance other than 0 and 1).")

# %% [markdown]
# ## Quality against speed: the number of steps
#
# The DDIM paper's trade-off: fewer steps are cheaper (the cost of a sample is one network evaluation per
# step) but each step must then jump further. All points below start from the same initial noise; the
# dashed line is the per-pixel baseline's FID at the same number of samples, the band ± its bootstrap std.

# %%
import pandas as pd

sweep = pd.DataFrame(report.meta.get("sweep", []))
if len(sweep):
    base = report.metrics.get("steps", {})
    fig, axes = R.subplots(10, 3.2, ncols=2)
    for eta, rows in sweep.groupby("eta"):
        for ax, x in zip(axes, ("steps", "seconds_per_sample")):
            ax.errorbar(rows[x], rows["fid"], yerr=rows["fid_std"], marker="o", capsize=3, label=f"eta = {eta:g}")
    for ax, x in zip(axes, ("DDIM steps", "seconds per sample (this machine)")):
        if "baseline_fid" in base:
            ax.axhline(base["baseline_fid"], color="grey", ls="--", lw=1, label="per-pixel baseline")
        ax.set(xscale="log", yscale="log", xlabel=x, ylabel="FID")
        ax.legend(fontsize=8)
    axes[0].set_title(f"FID against steps ({report.meta.get('sweep_samples')} samples)")
    axes[1].set_title("FID against cost")
    R.show(fig)
    frame = sweep.assign(**{"FID": [R.fmt(f, s) for f, s in zip(sweep["fid"], sweep["fid_std"])],
                            "KID": [R.fmt(k, s) for k, s in zip(sweep["kid"], sweep["kid_std"])],
                            "ms per sample": (1000 * sweep["seconds_per_sample"]).round(2)})
    R.table(frame[["eta", "steps", "FID", "KID", "ms per sample"]])
    best = report.meta.get("best_sweep", {})
    R.say(f"Best: eta {best.get('eta')}, {best.get('steps')} steps. Baseline FID at the same count: "
          f"{R.fmt(base.get('baseline_fid'), base.get('baseline_fid_std'))}.")

# %%
if report.has("sweep_grids"):
    grids = report.array("sweep_grids", ndim=6)
    steps, etas = report.array("sweep_steps"), report.array("sweep_etas")
    images = grids.reshape((-1,) + grids.shape[3:])
    R.say("The same 8 noise images, decoded with each sampler setting (rows: eta / steps).")
    R.labelled_rows(images, grids.shape[2], [f"{e:g} / {s}" for e in etas for s in steps], cell=0.7)

# %% [markdown]
# ## Classifier-free guidance
#
# Samples asked for balanced labels 0-9 at each guidance scale w, measured by FID and by the share the
# dataset's classifier (the ruler) puts in the requested class, sampled at eta `guidance_eta` (default 1).
# w = 0 ignores the label (chance: about 0.1); larger w buys accuracy and, past some point, costs diversity
# and FID.

# %%
guidance = pd.DataFrame(report.meta.get("guidance", []))
if len(guidance):
    g = report.metrics.get("guidance", {})
    fig, ax = R.subplots(5.5, 3.4)
    ax.errorbar(guidance["conditional_accuracy"], guidance["fid"], yerr=guidance["fid_std"], marker="o", capsize=3)
    for _, row in guidance.iterrows():
        ax.annotate(f"w = {row['scale']:g}", (row["conditional_accuracy"], row["fid"]), textcoords="offset points",
                    xytext=(5, 5), fontsize=8)
    if "baseline_fid" in g:
        ax.axhline(g["baseline_fid"] / 2, color="grey", ls=":", lw=1, label="half the baseline's FID")
    ax.set(xlabel="conditional accuracy", ylabel="FID", yscale="log", title="guidance trade-off")
    ax.legend(fontsize=8)
    R.show(fig)
    R.table(guidance.assign(FID=[R.fmt(f, s) for f, s in zip(guidance["fid"], guidance["fid_std"])])
            [["scale", "FID", "conditional_accuracy"]])
    R.say(f"Baseline (per-pixel samples, same requested labels): FID {R.fmt(g.get('baseline_fid'), g.get('baseline_fid_std'))}, "
          f"conditional accuracy {g.get('baseline_conditional_accuracy', float('nan')):.3f}. Headline scale: "
          f"w = {report.meta.get('guided_scale')}.")

# %%
if report.has("guidance_grids"):
    grids = report.array("guidance_grids", ndim=5)
    scales = report.array("guidance_scales")
    classes = 10 if len(grids[0]) % 10 == 0 else len(grids[0])
    columns = len(grids[0]) // classes
    R.say(f"Rows: the requested label; columns: the same {columns} noise images in every row and every grid.")
    for w, grid in zip(scales, grids):
        R.labelled_rows(grid, columns, [str(c) for c in range(classes)], cell=0.55, title=f"w = {w:g}")

# %% [markdown]
# ## Interpolating in the noise
#
# With eta = 0 the sampler is a deterministic map from noise to images, so the noise is a latent space.
# Each row decodes eight points on the great circle between two noise images (spherical interpolation:
# Gaussian noise in many dimensions lives near a sphere, and a straight line would pass through
# low-norm noise the network never saw).

# %%
if report.has("interpolations"):
    walks = report.array("interpolations", ndim=4, last=(1, 3))
    fig, clipped = R.image_grid(walks, 8, len(walks) // 8, title="slerp between two noise images (one pair per row)")
    R.show(fig)

# %% [markdown]
# ## One sample, step by step
#
# The sampler's estimate of the clean image after each step, from pure noise (left) to the sample (right):
# the layout of the digit is settled in the first few steps, the later ones sharpen it.

# %%
if report.has("trajectory"):
    strip = report.array("trajectory", ndim=5)[:, 0]
    fig, clipped = R.image_grid(strip, len(strip), 1, title=f"predicted clean image after each of {len(strip)} steps",
                                cell=0.6)
    R.show(fig)
