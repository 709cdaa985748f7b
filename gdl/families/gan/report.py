# ruff: noqa: F821  (runs in the template's kernel, where R, report and model are defined)
# The GANs' own section of their report (jupytext percent format): cells tagged "intro" follow the title of
# reports/templates/images.py, the others come after the template's samples and memorisation check.

# %% [markdown] tags=["intro"]
# A generative adversarial network (book chapter 4) trains two networks against each other: a *generator*
# that turns random noise *z* into an image, and a *critic* (the discriminator) that tells generated images
# from training images. The generator never sees a training image; it learns only from the critic's
# gradients. `dcgan` scores images with a real-vs-fake classifier (binary cross-entropy); `wgan_gp` and
# `cgan` with a Wasserstein critic kept 1-Lipschitz by a gradient penalty, whose score gap between real and
# generated images (`w_distance` below) estimates how far apart the two distributions are. `cgan` also hands
# both networks the class label, so one can ask for a class; in the default run its critic also names the
# class of what it sees (an auxiliary classifier, as in AC-GAN), and the generator is rewarded when its
# images are named as asked (`class_loss` below: the critic's cross-entropy on real images). A GAN has no
# likelihood: it is judged by its samples (FID, KID) only.

# %%
hist = report.history
R.say("Training losses per epoch. In a GAN neither loss falls to zero: they measure a game, not a fit. "
      "A critic loss near 0 (DCGAN) or a growing `w_distance` (WGAN-GP) means the critic wins and the "
      "generator's gradients fade; the curves should level off, not diverge."
      + (f" Last epoch: `w_distance` {hist['w_distance'].iloc[-1]:.3g}, gradient penalty "
         f"{hist['gradient_penalty'].iloc[-1]:.3g}." if "w_distance" in hist else "")
      + (f" Last epoch: the discriminator labels {hist['d_real_accuracy'].iloc[-1]:.0%} of real and "
         f"{hist['d_fake_accuracy'].iloc[-1]:.0%} of generated images correctly." if "d_real_accuracy" in hist else "")
      + (f" The critic's class cross-entropy on real images: {hist['class_loss'].iloc[-1]:.3g} nats "
         f"(chance: ln k)." if "class_loss" in hist else ""))

# %% [markdown]
# ## Walking through the latent space
#
# Each row decodes eight points on the great circle between two noise vectors (spherical interpolation,
# as Gaussian noise lives near a sphere). A generator that learnt a smooth map changes one image into the
# other gradually; one that memorised jumps.

# %%
if report.has("interpolations"):
    walks = report.array("interpolations", ndim=4, last=(1, 3))
    fig, clipped = R.image_grid(walks, 8, len(walks) // 8, title="interpolations (one pair of noise vectors per row)")
    R.show(fig)

# %% [markdown]
# ## One noise, every class (conditional GAN)
#
# Rows are the classes the generator was asked for (on shapes: the colour, as the book asks CelebA faces for
# blond hair), columns eight fixed noise vectors: within a column only the class changes. The metrics above give the share of samples that the dataset's classifier puts in the
# class they were asked for (`conditional_accuracy`).

# %%
if report.has("class_grid"):
    grid = report.array("class_grid", ndim=4, last=(1, 3))
    condition = report.meta.get("condition", "label")
    names = report.data.get(f"{condition}_names")
    rows = len(grid) // 8
    R.labelled_rows(grid, 8, [str(names[i]) if names is not None and i < len(names) else str(i) for i in range(rows)],
                    cell=0.9, title=f"requested {condition} (rows) x noise vector (columns)")
else:
    R.say("*Unconditional model: no class grid.*")
