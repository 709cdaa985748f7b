# ruff: noqa: F821  (runs in the template's kernel, where R, report and model are defined)
# The energy-based model's own section of its report (jupytext percent format): cells tagged "intro" follow
# the title of reports/templates/images.py, the others come after the template's samples and memorisation check.

# %% [markdown] tags=["intro"]
# An energy-based model (book chapter 7) is a single network that gives every image a *score*; its
# *energy* is minus the score, and the model's density is p(x) ∝ exp(−energy(x)), never normalised. It is
# trained by contrastive divergence: the scores of training images are pushed up and the scores of the
# model's own samples pushed down, until the model cannot tell them apart. Its samples come from
# *Langevin dynamics*: start from noise, then repeatedly add a little Gaussian noise and step uphill along
# the score's gradient with respect to the pixels. During training the chains continue from a replay
# buffer of earlier samples; the samples below start from uniform noise. With no normalising constant
# there is no likelihood: the model is judged by its samples (FID, KID).

# %%
hist = report.history
R.say("Training curves: `score_real` and `score_fake` are the mean scores of training images and of the "
      "Langevin samples in each batch; contrastive divergence (`cd_loss` = fake − real) pushes them apart and "
      "the sampler catches up, so a healthy run keeps the two close and `cd_loss` near 0. A gap that keeps "
      "growing means the sampler no longer reaches the model's modes."
      + (f" Last epoch: real {hist['score_real'].iloc[-1]:.3g}, fake {hist['score_fake'].iloc[-1]:.3g}, "
         f"cd_loss {hist['cd_loss'].iloc[-1]:.3g}." if "score_real" in hist else ""))

# %% [markdown]
# ## Langevin chains from noise
#
# Eight chains (rows), from uniform noise (left) through every tenth of the sampling steps to the final
# sample (right): the score's gradient carves strokes out of noise, then sharpens them.

# %%
if report.has("chains"):
    chains = report.array("chains", ndim=4, last=(1, 3))
    fig, clipped = R.image_grid(chains, len(chains) // 8, 8, title="Langevin chains: noise (left) to sample (right)")
    R.show(fig)

# %% [markdown]
# ## Energies of real, generated and noise images
#
# The energy the model gives test images (never trained on), its own samples and uniform noise. A trained
# model puts real images and its samples low and noise far higher; samples *below* the test images mean the
# sampler finds deeper valleys than the data sits in (often: over-saturated strokes).

# %%
if report.has("energy_test"):
    groups = [("test images", report.array("energy_test", ndim=1)),
              ("samples", report.array("energy_samples", ndim=1)),
              ("uniform noise", report.array("energy_noise", ndim=1))]
    fig, ax = R.subplots(7, 3.2)
    lo = min(float(np.percentile(e, 0.5)) for _, e in groups)
    hi = max(float(np.percentile(e, 99.5)) for _, e in groups)
    bins = np.linspace(lo, hi, 60)
    for (name, e), colour in zip(groups, ("tab:blue", "tab:orange", "tab:gray")):
        ax.hist(np.clip(e, lo, hi), bins=bins, alpha=0.6, color=colour, label=f"{name} (mean {e.mean():.3g})")
    ax.set_xlabel("energy = −score (lower: more probable under the model)")
    ax.set_ylabel("images")
    ax.legend()
    R.show(fig)
