# %% [markdown]
# *The code is hidden in this page: the executed notebook `reports/<model>.ipynb` beside it has it. It runs
# `reports/templates/labels.py` (the report of every model that classifies) followed by the model family's
# own section, `gdl/families/<family>/report.py`; the helpers are in `gdl/reporting.py`.
# Rebuild with `dvc repro`.*

# %% tags=["parameters"]
# Parameters (the report stage injects its values after this cell).
model = "cnn"
family = "classifier"
title = "Image classifier"

# %% tags=["title"]
from gdl import reporting as R

report = R.load_model_report(model, kind="labels")
R.say(f"# {title}: `{model}`\n\nFamily `{family}`, trained on the **{report.dataset}** dataset.")

# %% [markdown]
# ## Metrics
#
# Measured on the held-out test split by the `evaluate` stage. *Accuracy* is the share of test examples whose
# most probable class is the true one, ± its bootstrap standard deviation over the test examples: two
# models closer than that are not told apart by this test split. *Cross-entropy* is the mean −log *p*(true
# class) in nats: it also counts how sure the model was, so a confident mistake costs more than a hesitant
# one. The baseline never looks at the input: it always answers the training split's most frequent class
# (accuracy) and gives every class its training frequency as probability (cross-entropy; ln 4 = 1.39 nats
# for four equally common classes).

# %%
rows = R.show_metrics(report)

# %% [markdown]
# ## Training curves
#
# Loss and accuracy on the training data and on the validation split after every epoch. The training
# figures are averaged over the epoch while the weights still change, with dropout on where the network has
# it; the validation ones are measured at the epoch's end, in inference mode. A validation loss that turns
# upward while the training loss keeps falling is over-fitting. The star marks the epoch with the lowest
# validation loss.

# %%
R.show_history(report)

# %% [markdown]
# ## Confusion matrix
#
# One row per true class, one column per predicted class, each cell the number of test examples: the
# diagonal holds the correct answers, every other cell one kind of mistake. The colour is the cell's share
# of its row. Below it, per class: how many of its test examples the model got right, and what it took the
# others for.

# %%
import numpy as np

probs, labels, images = R.classifier_outputs(report)
names = R.class_names(report.data, probs.shape[1])
predicted = probs.argmax(axis=1)
counts = R.confusion_matrix(labels, predicted, len(names))
R.show(R.confusion_matrix_figure(counts, names, title=f"{len(labels)} test examples"))
R.table(R.per_class_frame(counts, names))

# %% [markdown]
# ## Mistakes
#
# Misclassified test examples, the most confident mistakes first. Above each: its true class, then the
# class the model chose and the probability it gave that class. A confident mistake points at something
# the model learnt wrong; a hesitant one (near 1 / number of classes) at an example it found ambiguous.

# %%
wrong = np.flatnonzero(predicted != labels)
confidence = probs[np.arange(len(labels)), predicted]
wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
shown = wrong[:32]
if len(shown) == 0:
    R.say(f"**No mistakes**: all {len(labels)} test examples are classified correctly.")
else:
    captions = [f"{names[labels[i]]}\n→ {names[predicted[i]]} ({confidence[i]:.0%})" for i in shown]
    fig, clipped = R.captioned_grid(images[shown], captions, ncols=8)
    R.show(fig)
    right = confidence[predicted == labels]
    R.say(f"{len(shown)} of the {len(wrong)} mistakes ({len(wrong) / len(labels):.1%} of the test split). "
          f"Mean probability of the chosen class: {f'{right.mean():.0%}' if len(right) else '—'} when right, "
          f"{confidence[wrong].mean():.0%} when wrong.")
    R.clip_note(clipped, "test image")

# %% [markdown] tags=["appendix"]
# ### Inputs of this report
#
# SHA-256 prefixes of the files read (`dvc.lock` records the full hashes).

# %% tags=["appendix"]
R.say(R.provenance(report.inputs))
