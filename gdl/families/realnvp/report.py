# ruff: noqa: F821  (runs in the template's kernel, where R, report and model are defined)
# RealNVP's own section of its report (jupytext percent format): cells tagged "intro" follow the title of
# reports/templates/points.py, the others come after the template's samples. It runs in the template's
# kernel: `R` (gdl.reporting), `report` (the loaded inputs) and `model` are defined there.

# %% [markdown] tags=["intro"]
# RealNVP (book chapter 6) is an invertible network *f* that maps a data point *x* to a latent point
# *z* = *f*(*x*) with a tractable Jacobian determinant, so the log-likelihood is exact:
# log *p*(*x*) = log N(*f*(*x*); 0, *I*) + log |det ∂*f*/∂*x*|. Training maximises it; sampling runs the
# flow backwards, *x* = *f*⁻¹(*z*) with *z* ~ N(0, *I*). In two dimensions this is easy to see: the flow
# should turn the data into a round Gaussian blob, and Gaussian draws into data.

# %% [markdown]
# ## From data to latent space and back
#
# Top row, left to right: test points *x* coloured by class, and the same points mapped forward, *f*(*x*):
# if the flow fits, they look like a standard Gaussian. Bottom row, right to left: draws *z* ~ N(0, *I*),
# and the generated points *f*⁻¹(*z*). Panels in one column share their axes (data space on the left,
# latent space on the right); the dashed circles mark 1, 2 and 3 standard deviations of the prior.

# %%
import numpy as np
import pandas as pd

data = report.array("data", ndim=2, last=2)
labels = report.array("data_labels", ndim=1, length=len(data))
data_latent = report.array("data_latent", ndim=2, last=2, length=len(data))
latent = report.array("latent", ndim=2, last=2)
samples = report.array("samples", ndim=2, last=2, length=len(latent))

x_lim = R.limits(data, samples)
r = max(abs(v) for pair in R.limits(data_latent, latent) for v in pair)
z_lim = [(-r, r), (-r, r)]  # latent space: square and centred on the prior's mean
fig, axes = R.subplots(10.0, 9.0, 2, 2)
panels = [(axes[0, 0], data, labels, x_lim, "data space: test points $x$"),
          (axes[0, 1], data_latent, labels, z_lim, "latent space: $f(x)$"),
          (axes[1, 1], latent, None, z_lim, r"latent space: draws $z \sim \mathcal{N}(0, I)$"),
          (axes[1, 0], samples, None, x_lim, "data space: generated $f^{-1}(z)$")]
for ax, pts, lab, lim, name in panels:
    R.scatter_classes(ax, pts, lab)
    if lim is z_lim:
        R.prior_circles(ax)
    ax.set_xlim(lim[0])
    ax.set_ylim(lim[1])
    ax.set_title(f"{name} (n={min(len(pts), R.MAX_POINTS)})")
    ax.grid(alpha=0.2)
R.show(fig)
notes = [f"{k} of the plotted {what} fall outside the axes (set from the central 99% of the points)"
         for what, pts, lim in [("test points", data, x_lim), ("f(x)", data_latent, z_lim),
                                ("Gaussian draws", latent, z_lim), ("generated points", samples, x_lim)]
         if (k := R.outside(pts, lim))]
if notes:
    R.say("\n".join(f"- {n}" for n in notes))

# %% [markdown]
# ### How Gaussian is *f*(*x*)?
#
# If the flow fitted perfectly, the mapped test points would have mean 0 and identity covariance; the
# Gaussian draws that produced the samples show how far from that a finite sample lies by chance.

# %%
def moments(a):
    c = np.cov(a.T)
    return {"mean z1": a[:, 0].mean(), "mean z2": a[:, 1].mean(), "var z1": c[0, 0], "var z2": c[1, 1],
            "cov z1 z2": c[0, 1]}


target = {"mean z1": 0.0, "mean z2": 0.0, "var z1": 1.0, "var z2": 1.0, "cov z1 z2": 0.0}
R.table(pd.DataFrame({"f(x) of the test points": moments(data_latent), "the Gaussian draws z": moments(latent),
                        "target N(0, I)": target}).rename_axis("moment").map(lambda v: f"{v:.3f}"))
