# ruff: noqa: F821  (runs in the template's kernel, where R, report and model are defined)
# The VAE's own section of its report (jupytext percent format): cells tagged "intro" follow the title of
# reports/templates/images.py, the others come after the template's samples. It runs in the template's
# kernel: `R` (gdl.reporting), `report` (the loaded inputs) and `model` are defined there.

# %% [markdown] tags=["intro"]
# A variational autoencoder (book chapter 3) learns an encoder that maps an image *x* to a Gaussian
# *q*(*z* | *x*) = N(μ(*x*), σ²(*x*)) over a small latent space, and a decoder that maps a latent point *z*
# back to pixel probabilities *p*(*x* | *z*). Training maximises the evidence lower bound (ELBO): rebuild
# the input well, while a KL term keeps *q*(*z* | *x*) close to the prior N(0, *I*), so that decoding
# random draws from the prior gives new images. Its likelihood is known only through bounds: the ELBO, and
# the tighter importance-weighted bound (IWAE) that the headline bits/dim uses.

# %% [markdown]
# ## Reconstructions
#
# Top row: test images the model never trained on. Bottom row: the decoder's output for the encoder's mean
# μ(*x*). What differs between the rows is what the latent bottleneck throws away; VAE reconstructions are
# typically blurry, since the pixel likelihood averages over every image compatible with a latent point.

# %%
import numpy as np

originals = report.array("originals", ndim=4, last=(1, 3))
recon = report.array("reconstructions", ndim=4, last=(1, 3), length=len(originals))
if originals.shape != recon.shape:
    raise R.ReportInputError(report.inputs["samples"].path, f"'originals' {originals.shape} and "
                             f"'reconstructions' {recon.shape} differ in shape", report.inputs["samples"].producer)
n = min(16, len(originals))
clipped = R.labelled_rows(np.concatenate([originals[:n], recon[:n]]), n, ["original", "reconstruction"], cell=0.7)
error = np.abs(R.to_images(originals[:n])[0] - R.to_images(recon[:n])[0]).mean()
R.say(f"Mean absolute pixel error over these {n} pairs: **{error:.4f}** (pixel values in [0, 1]).")
R.clip_note(clipped, "original/reconstruction")

# %% [markdown]
# ## The latent space
#
# Each point is a test image placed at its latent mean μ(*x*), coloured by its label, which the model never
# saw: clusters mean the encoder separates the classes on its own. The dashed circles mark 1, 2 and 3
# standard deviations of the prior, the region the KL term pulls the codes into and the sampler draws from;
# empty regions inside them decode to implausible images. A latent space of more than two dimensions is
# drawn on the plane of its first two principal components (the prior projects to the same circles).

# %%
z = report.array("latent_z", ndim=2)
labels = report.array("latent_labels", ndim=1, length=len(z))
names = report.arrays.get("latent_label_names")  # optional: the labels' names (e.g. the shapes)
dim = z.shape[1]
if dim > 2:
    points, variance = R.principal_plane(z)
    axis_names = [f"principal component {i + 1} ({v:.0%} of the variance)" for i, v in enumerate(variance)]
elif dim == 2:
    points, axis_names = z, ["$z_1$", "$z_2$"]
else:  # one dimension: the code against the (jittered) label
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(z))
    points, axis_names = np.c_[z[:, 0], labels + jitter], ["$z_1$", "label (jittered)"]
fig, ax = R.subplots(7.0, 6.2)
R.scatter_classes(ax, points, labels, names=None if names is None else [str(v) for v in names], s=6)
if dim >= 2:
    R.prior_circles(ax)
    ax.set_aspect("equal", adjustable="datalim")
ax.set_xlabel(axis_names[0])
ax.set_ylabel(axis_names[1])
ax.set_title(f"latent means of {min(len(z), R.MAX_POINTS)} test images ({dim}-dimensional latent space)")
ax.grid(alpha=0.2)
R.show(fig)
if dim > 2:
    R.say(f"*The latent space has {dim} dimensions: drawn is the plane of its first two principal components, "
          f"which hold {variance.sum():.0%} of the codes' variance; classes that overlap here may lie apart in "
          "the other dimensions.*")
rounded = lambda a: ", ".join(f"{v:.3g}" for v in a[:4])
more = " (first 4 dimensions)" if dim > 4 else ""
R.say(f"Per-dimension mean of the latent means: {rounded(z.mean(0))}; standard deviation: {rounded(z.std(0))}"
      f"{more}. The prior has mean 0 and standard deviation 1; for a VAE that fits it, the spread of the means "
      "plus each code's own variance σ² adds up to about 1 per dimension.")

# %% [markdown]
# A grid of images decoded from evenly spaced points of the latent plane would need the model itself; this
# report only reads the files the pipeline wrote (no TensorFlow in the report kernel), so it is not shown.

# %% [markdown]
# ## Morphing between two images
#
# The codes of two test images, joined by a straight line in latent space and decoded at ten evenly spaced
# points (the book's last CelebA figure). A smooth sequence of plausible images says the latent space is
# continuous: every point between two codes decodes to something like the data.

# %%
if report.has("morph"):
    morph = report.array("morph", ndim=4, last=(1, 3))
    imgs, cmap, _ = R.to_images(morph)
    fig, ax = R.subplots(0.8 * len(imgs) + 0.6, 1.3)
    ax.imshow(R.mosaic(imgs, len(imgs)), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title("first test image → second test image")
    R.show(fig)

# %% [markdown]
# ## Attribute arithmetic
#
# The book adds a "smiling" vector to faces; here an attribute of the shapes. The vector is the mean code of
# the training images that have the attribute value minus the mean code of those that do not. Each row is a
# test image without the value, decoded with 0, 0.5, 1, 1.5 and 2 times the vector added to its code: the
# value should appear while the rest of the image (shape, colour, place) stays.

# %%
shift = report.meta.get("attribute_shift")
if report.has("attribute_rows") and shift:
    scales = report.array("attribute_scales", ndim=1)
    rows = report.array("attribute_rows", ndim=4, last=(1, 3))
    value = next(k[len(shift["attribute"]) + 1:-len("_share")] for k in report.metrics
                 if k.startswith(shift["attribute"] + "_") and k.endswith("_share"))
    imgs, cmap, _ = R.to_images(rows)
    fig, ax = R.subplots(0.8 * len(scales) + 1.0, 0.8 * (len(imgs) // len(scales)) + 0.6)
    ax.imshow(R.mosaic(imgs, len(scales)), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    w = imgs.shape[2] + 1
    ax.set_xticks([w * (i + 0.5) for i in range(len(scales))], [f"+{s:g}×" for s in scales])
    ax.set_yticks([])
    ax.set_title(f"adding the {shift['attribute']} = {value!r} vector")
    R.show(fig)
    import pandas as pd

    shares = pd.DataFrame([{shift["attribute"]: name, "share before": f"{s['before']:.1%}",
                            "share after adding its vector": f"{s['after']:.1%}"}
                           for name, s in shift["shares"].items()])
    reader, accuracy = shift.get("reader", "the dataset's classifier"), shift.get("reader_test_accuracy")
    R.say(f"Measured on {report.meta.get('num_samples', '?')} samples from the prior: the share that {reader} "
          f"reads as each {shift['attribute']}, before and after adding that value's vector to every code"
          + (f" (the reader is right on {accuracy:.1%} of the test images)" if R.is_number(accuracy) else "")
          + ". A vector that works moves the share towards 100%.")
    R.table(shares)
