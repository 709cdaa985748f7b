# %% [markdown]
# *The code is hidden in this page: the executed notebook `reports/<model>.ipynb` beside it has it. It runs
# `reports/templates/pianorolls.py` (the report of every model that generates multi-track piano rolls)
# followed by the model family's own section, `gdl/families/<family>/report.py`; the helpers are in
# `gdl/reporting.py`. Rebuild with `dvc repro`.*

# %% tags=["parameters"]
# Parameters (the report stage injects its values after this cell).
model = "musegan"
family = "musegan"
title = "MuseGAN"

# %% tags=["title"]
from gdl import reporting as R

report = R.load_model_report(model, kind="pianorolls")
R.say(f"# {title}: `{model}`\n\nFamily `{family}`, trained on the **{report.dataset}** dataset "
      f"(piano rolls: `{report.meta.get('data', '?')}`).")

# %% [markdown]
# ## Metrics
#
# A piano roll has no likelihood to score and no backbone to measure it with, so the model is judged as the
# MuseGAN paper judges it: by statistics of its bars, computed the same way for its samples, for the training
# data and for a baseline that knows only the data's note density (independent random notes). A good model's
# statistics are close to the data's; the baseline's show what ignoring musical structure gives. ± is a
# bootstrap standard deviation over the samples.

# %%
rows = R.show_metrics(report)

# %% [markdown]
# ## Training curves
#
# The critic's and the generator's losses per epoch. In a WGAN-GP the critic's loss estimates (minus) the
# Wasserstein distance between real and generated bars, plus the gradient penalty: it should shrink toward
# zero as the generator improves, while the generator's loss has no fixed target.

# %%
R.show_history(report)

# %% [markdown] tags=["appendix"]
# ### Inputs of this report
#
# SHA-256 prefixes of the files read (`dvc.lock` records the full hashes).

# %% tags=["appendix"]
R.say(R.provenance(report.inputs))
