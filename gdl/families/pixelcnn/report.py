# ruff: noqa: F821  (runs in the template's kernel, where R, report and model are defined)
# PixelCNN's own section of its report (jupytext percent format): cells tagged "intro" follow the title of
# reports/templates/images.py, the others come after the template's samples and memorisation check.

# %% [markdown] tags=["intro"]
# PixelCNN (book chapter 5) is an *autoregressive* model: it writes an image as a chain of conditionals,
# *p*(*x*) = ∏ *p*(*x*ᵢ | *x*₁ … *x*ᵢ₋₁), one pixel after the other in raster order, and one convolutional
# network gives all of them at once. Its convolutions are *masked* (pictured below) so that the output at a
# pixel depends only on the pixels above it and to its left: the first layer (type A) also hides the pixel
# itself, the later ones (type B) may see their own position, which by then carries only earlier pixels.
# Its likelihood is exact, so bits/dim below are not bounds; but sampling needs one network pass per pixel.
# The model works in its own small space (see the metrics' descriptions): images block-averaged to a few
# pixels a side and a few grey levels (`pixelcnn`: 16x16, 4 levels, a softmax per pixel, as in the book), or
# all 256 levels with a mixture of discretised logistics per pixel (`pixelcnn_mixture`, as in PixelCNN++).
# Its samples are upsampled bilinearly to the data's 32x32 for FID and KID.

# %%
import numpy as np

from gdl.families.pixelcnn.model import causal_mask

fig, axes = R.subplots(6.0, 3.0, ncols=2)
for ax, kind in zip(axes, "AB"):
    ax.imshow(causal_mask(7 if kind == "A" else 3, kind), cmap="Greens", vmin=0, vmax=1.3)
    ax.set_title(f"type {kind} mask ({7 if kind == 'A' else 3}x{7 if kind == 'A' else 3}): green = seen")
    ax.set_xticks([])
    ax.set_yticks([])
R.show(fig)
bpd, base = report.metrics.get("bits_per_dim"), (report.metrics.get("baseline") or {}).get("bits_per_dim")
size, levels = report.meta.get("image_size"), report.meta.get("levels")
if bpd is not None and base is not None:
    R.say(f"In the model's space ({size}x{size}, {levels} levels): **{bpd:.3f} bits/dim** on the test split, "
          f"against **{base:.3f}** for independent per-pixel marginals fitted on the training split "
          f"(uniform over the levels: {np.log2(levels):.3f}). "
          f"Drawing 64 samples took {report.meta.get('seconds_per_64_samples', float('nan')):.1f} s.")

# %% [markdown]
# ## Samples in the model's own space
#
# The samples before upsampling: what the model actually generates, pixel by pixel.

# %%
low = report.array("lowres_samples", ndim=4, last=1)
fig, _ = R.image_grid(low, 8, 8, title=f"{min(64, len(low))} samples at {low.shape[1]}x{low.shape[2]}")
R.show(fig)

# %% [markdown]
# ## What the model predicts for each pixel
#
# For a few test images (left), the model's distribution of each pixel given the true pixels before it:
# its expected grey level and its probability of the true level. Uncertainty concentrates on the strokes'
# edges; the background is predicted with near certainty.

# %%
if report.has("test_level_probs"):
    test = report.array("test_lowres", ndim=4, last=1)[..., 0]
    probs = report.array("test_level_probs", ndim=4, length=len(test))
    k = probs.shape[-1]
    truth = np.rint(test * (k - 1)).astype(int)
    expected = (probs * np.arange(k)).sum(-1) / (k - 1)
    p_true = np.take_along_axis(probs, truth[..., None], -1)[..., 0]
    R.labelled_rows(np.concatenate([test, expected, p_true]), len(test),
                    ["test image", "expected level", "P(true level)"], cell=1.0)
else:
    R.say("*A mixture-output model: no per-level table drawn.*")
