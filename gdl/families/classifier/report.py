# ruff: noqa: F821  (runs in the template's kernel, where R, report and model are defined)
# The classifiers' own section of their report (jupytext percent format): cells tagged "intro" follow the
# title of reports/templates/labels.py, the others come after the template's mistakes. It runs in the
# template's kernel: `R` (gdl.reporting), `report` (the loaded inputs) and `model` are defined there.

# %% [markdown] tags=["intro"]
# Book chapter 2 trains two classifiers on the same images with the same loss and optimiser. The
# *multilayer perceptron* (`mlp`) flattens each image into one long vector before its dense layers, so
# every pixel position has its own weights: a square seen in the top-left corner teaches it nothing about a
# square in the bottom-right one, and it must see every shape at every place. The *convolutional network*
# (`cnn`) slides the same small filters over the whole image, so an edge or a corner it learns to detect
# anywhere is detected everywhere. On the shapes dataset, where one shape of random size, colour and
# position lies on a plain background, the two should differ by far more than the noise of the accuracy.
# (The default `cnn` also takes each filter's maximum over the image before its dense layer, where the
# book flattens: then the position of a shape no longer matters at all; the `book` profile restores the
# book's network.)

# %% [markdown]
# ## Accuracy by the shape's size and place
#
# The test accuracy of groups of test images of about equal count, by the size of the shape (its radius)
# and by how far its centre lies from the image's centre, with the binomial standard error of each group.
# A network that recognises a shape wherever it lies is as good far from the centre as near it; small
# shapes, a few pixels across, are hard for any network.

# %%
import numpy as np

probs, labels, images = R.classifier_outputs(report)
correct = probs.argmax(axis=1) == labels
attributes = report.data.get("test_attributes")
columns = [str(v) for v in report.data.get("attribute_names", [])]
if attributes is None or len(attributes) != len(labels) or not {"size", "x", "y"} <= set(columns):
    R.say("*This dataset records no size and position of its objects: nothing to break the accuracy down by.*")
else:
    size, x, y = (attributes[:, columns.index(c)] for c in ("size", "x", "y"))
    centre = np.array(images.shape[1:3]) / 2.0  # (rows, columns): y, x of the image's centre
    off_centre = np.hypot(x - centre[1], y - centre[0])
    fig, axes = R.subplots(9.0, 3.4, 1, 2, sharey=True)
    for ax, value, name in [(axes[0], size, "shape radius (pixels)"),
                            (axes[1], off_centre, "shape centre's distance from the image centre (pixels)")]:
        edges = np.quantile(value, np.linspace(0, 1, 6))
        group = np.clip(np.searchsorted(edges, value, side="right") - 1, 0, 4)
        mids = np.array([value[group == g].mean() for g in range(5)])
        acc = np.array([correct[group == g].mean() for g in range(5)])
        n = np.bincount(group, minlength=5)
        ax.errorbar(mids, acc, yerr=np.sqrt(acc * (1 - acc) / n), marker="o", capsize=3, label="model")
        ax.axhline(1 / probs.shape[1], color="0.5", ls="--", lw=1, label="chance (1 / classes)")
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[0].set_ylim(0.0, 1.02)
    axes[0].legend(loc="lower right")
    R.show(fig)
