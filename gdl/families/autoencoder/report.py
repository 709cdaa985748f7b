# ruff: noqa: F821  (runs in the template's kernel, where R, report and model are defined)
# The autoencoder's own section of its report (jupytext percent format): cells tagged "intro" follow the
# title of reports/templates/images.py, the others come after the template's samples. It runs in the
# template's kernel: `R` (gdl.reporting), `report` (the loaded inputs) and `model` are defined there.

# %% [markdown] tags=["intro"]
# An autoencoder (book chapter 3) is two networks trained together: an encoder that squeezes an image *x*
# into a point *z* of a small latent space (here 2-D), and a decoder that turns *z* back into an image.
# Training only asks the output to match the input (binary cross-entropy per pixel); nothing says how the
# codes should be laid out. So an autoencoder is a compressor, and only by accident a generative model: to
# make a new image one must pick a *z* to decode, and there is no distribution over *z* to pick it from. As
# in the book, the samples below decode points drawn uniformly from the box spanned by the training images'
# codes. Compare them with the variational autoencoder's, whose training adds exactly that distribution.

# %% [markdown]
# ## Reconstructions
#
# Top row: test images the model never trained on. Bottom row: the decoder's output for the encoder's code
# *z*. Everything the bottom row lacks was lost in squeezing each image into two numbers. The metrics table
# above compares the test split's reconstruction error with that of PCA keeping as many components: the
# best *linear* code of the same size.

# %%
import math

import numpy as np

originals = report.array("originals", ndim=4, last=(1, 3))
recon = report.array("reconstructions", ndim=4, last=(1, 3), length=len(originals))
if originals.shape != recon.shape:
    raise R.ReportInputError(report.inputs["samples"].path, f"'originals' {originals.shape} and "
                             f"'reconstructions' {recon.shape} differ in shape", report.inputs["samples"].producer)
n = min(16, len(originals))
clipped = R.labelled_rows(np.concatenate([originals[:n], recon[:n]]), n, ["original", "reconstruction"], cell=0.7)
model_mse, pca_mse = report.metrics.get("reconstruction_mse"), (report.metrics.get("baseline") or {}).get(
    "reconstruction_mse")
if R.is_number(model_mse) and R.is_number(pca_mse):
    verdict = ("below PCA's", "the non-linear code keeps more of each image than the best linear one") \
        if model_mse < pca_mse else ("NOT below PCA's", "the autoencoder has not even learnt what PCA finds")
    R.say(f"Mean squared error per pixel over the whole test split: **{model_mse:.4g}**, {verdict[0]} "
          f"{pca_mse:.4g} with as many components (×{pca_mse / model_mse:.2f}): {verdict[1]}.")
R.clip_note(clipped, "original/reconstruction")

# %% [markdown]
# ## The latent space
#
# Each point is a test image placed at its code *z*, coloured by its digit, which the model never saw:
# clusters mean the encoder separates the digits on its own. The dashed rectangle is the box that the
# samples are drawn from (the range of the training codes in the last epoch of training). Unlike a VAE's,
# these codes are not pulled towards any particular place: the clusters have whatever sizes, shapes and
# gaps the decoder found convenient.

# %%
z = report.array("latent_z", ndim=2)
labels = report.array("latent_labels", ndim=1, length=len(z))
names = report.arrays.get("latent_label_names")  # optional: the labels' names
names = None if names is None else [str(v) for v in names]
dim = z.shape[1]
box = report.array("sample_box", ndim=2, last=dim) if report.has("sample_box") else None
if dim >= 2:
    points, axis_names = z[:, :2], ["$z_1$", "$z_2$"]
else:  # one dimension: the code against the (jittered) label
    jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(z))
    points, axis_names = np.c_[z[:, 0], labels + jitter], ["$z_1$", "label (jittered)"]
fig, ax = R.subplots(7.0, 6.2)
R.scatter_classes(ax, points, labels, names=names, s=6)
if box is not None and dim >= 2:
    (x0, y0), (x1, y1) = box[0, :2], box[1, :2]
    ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], "k--", lw=0.8, alpha=0.6)
ax.set_xlabel(axis_names[0])
ax.set_ylabel(axis_names[1])
more = f" (its first two of {dim} dimensions)" if dim > 2 else ""
ax.set_title(f"codes of {min(len(z), R.MAX_POINTS)} test images{more}")
ax.grid(alpha=0.2)
R.show(fig)
if box is not None and dim >= 2:
    # How much of the box no test code comes near: the share of its cells (10x10) without a single code,
    # next to the share a uniform spread of as many codes would leave empty, (1 - 1/cells)^n on average.
    cells = 10
    inside = np.all((points >= box[0, :2]) & (points <= box[1, :2]), axis=1)
    idx = np.floor((points[inside] - box[0, :2]) / np.maximum(box[1, :2] - box[0, :2], 1e-12) * cells)
    empty = 1.0 - len({tuple(i) for i in np.clip(idx, 0, cells - 1).astype(int)}) / cells ** 2
    uniform = (1.0 - 1.0 / cells ** 2) ** int(inside.sum())
    R.say(f"Divide the sampling box into {cells}×{cells} cells: **{empty:.0%}** of them hold not a single one "
          f"of the {int(inside.sum())} test codes inside it (spread evenly over the box, as many codes would "
          f"leave about {uniform:.0%} empty). A uniform draw lands in such an empty cell {empty:.0%} of the "
          "time, and the decoder has never been asked what to draw there.")


# %% [markdown]
# ## Decoding the latent plane
#
# The book's picture of what the decoder has learnt: images decoded from an evenly spaced grid of points
# covering the test codes above, each placed where it was decoded from (the axes are those of the map
# above). Within a cluster the decoder draws its digit; between and beyond the clusters it morphs one digit
# into another or draws shapes that are no digit at all, and these regions are where many of the samples
# come from.

# %%
if report.has("latent_grid") and report.has("latent_grid_extent"):
    grid = report.array("latent_grid", ndim=4, last=(1, 3))
    xmin, xmax, ymin, ymax = (float(v) for v in report.array("latent_grid_extent", ndim=1, length=4))
    size = math.isqrt(len(grid))
    if size * size != len(grid) or size < 2:
        raise R.ReportInputError(report.inputs["samples"].path, f"'latent_grid' holds {len(grid)} images, "
                                 "not a square grid", report.inputs["samples"].producer)
    imgs, cmap, clipped = R.to_images(grid)
    pad, (hh, ww) = 1, imgs.shape[1:3]
    # Place the mosaic so that each image's centre sits on the latent point it was decoded from.
    sx, sy = (xmax - xmin) / ((size - 1) * (ww + pad)), (ymax - ymin) / ((size - 1) * (hh + pad))
    left, top = xmin - (pad + ww / 2) * sx, ymax + (pad + hh / 2) * sy
    tiles = R.mosaic(imgs, size, pad=pad)
    extent = [left, left + tiles.shape[1] * sx, top - tiles.shape[0] * sy, top]
    fig, ax = R.subplots(8.0, 8.0)
    ax.imshow(tiles, cmap=cmap, vmin=0, vmax=1, interpolation="nearest", extent=extent, aspect="auto")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(f"{size}×{size} images decoded over the latent plane")
    R.show(fig)
    if dim > 2:
        R.say(f"*Only $z_1$ and $z_2$ vary over the grid; the other {dim - 2} dimensions are held at the test "
              "codes' mean.*")
    R.clip_note(clipped, "decoded grid")
else:
    R.say("*samples file has no `latent_grid`: the decoded latent plane is not shown.*")

# %% [markdown]
# ## Why the samples are poor
#
# The samples above are decoded from uniform draws over the box of the training codes, the book's recipe.
# The encoder was never asked to fill that box, nor to make nearby codes decode to similar images, so a
# random point often falls in a gap between the clusters or far out on a sparse arm of one, and decodes to
# a blend of digits or a blur. And each digit comes up in proportion to the *area* its cluster covers in
# the box, not to how common it is: below, the share of each digit among the samples, as the dataset's
# classifier (the backbone) sees them, next to its share of the test images.
#
# A VAE's KL term pulls the codes into a known distribution N(0, *I*) that sampling then follows: compare
# its FID and its samples' digits on the same data (the summary report). With a latent space of only two
# dimensions, both squeeze every digit into one plane, so neither model's samples are sharp.

# %%
shares, truth = report.meta.get("sample_class_shares"), report.meta.get("test_class_shares")
if shares and truth and len(shares) == len(truth):
    shares, truth = np.asarray(shares, float), np.asarray(truth, float)
    k = np.arange(len(truth))
    fig, ax = R.subplots(7.0, 3.0)
    ax.bar(k - 0.2, truth, 0.4, label="test images (true labels)", color="tab:gray")
    ax.bar(k + 0.2, shares, 0.4, label="samples (as the classifier sees them)", color="tab:blue")
    ax.set_xticks(k, [str(int(c)) for c in k] if names is None else names[: len(k)])
    ax.set_xlabel("class")
    ax.set_ylabel("share")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    R.show(fig)
    rare = [str(int(c)) if names is None else names[c] for c in k if shares[c] < truth[c] / 3]
    tv = report.metrics.get("class_tv")
    R.say((f"Total-variation distance between the two: **{tv:.2f}** (0: the same frequencies). " if R.is_number(tv)
           else "") + (f"Digits drawn less than a third as often as in the data: {', '.join(rare)}." if rare
                       else "No digit is drawn less than a third as often as in the data."))
else:
    R.say("*metrics/<model>.meta.json has no class shares (evaluation ran without the dataset's classifier): "
          "the digits of the samples are not shown.*")
