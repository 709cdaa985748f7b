# %% [markdown]
# # Results summary
#
# Every model of the pipeline next to its baseline: one block of rows per model, one row per figure, each
# from `metrics/<model>.json` and `metrics/<model>.meta.json` (the `evaluate` stages) and, where the seed
# study has been run, `metrics/seeds/<model>.json`. The same table is written as GitHub markdown to
# `reports/results.md`, which the README embeds.
#
# *The code is hidden in this page: the executed notebook `reports/summary.ipynb` has it
# (template `reports/templates/summary.py`, helpers in `gdl/reporting.py`). Rebuild with `dvc repro`.*

# %% tags=["parameters"]
# Parameters (the report stage injects its values after this cell).
metrics_dir = "metrics"
results_md = "reports/results.md"

# %%
from gdl import reporting as R
from gdl.atomic import write_text

results, rulers = R.load_results(metrics_dir)
R.say(R.results_table(results))
R.say(R.results_legend(results, rulers))

# %% [markdown]
# ## The image families side by side
#
# One table per image dataset: every model measured with the same backbone and the same number of samples,
# so its rows compare directly. Bits/dim are comparable only within one space (the column after them says
# which: PixelCNN models its images at a reduced size and number of levels, as the book does).

# %%
R.say(R.image_families_markdown(results))

# %% [markdown]
# ## Each model against its baseline
#
# The figure each model is judged by (FID for images, the negative log-likelihood for points; lower is
# better), for the model, the baseline and, for images, the reference that real images reach. Error bars:
# the measurement noise.

# %%
R.show(R.summary_figure(results))

# %% [markdown]
# ## `reports/results.md`
#
# The table above as GitHub markdown. It is rewritten on every `dvc repro`: edit the templates, not the file.

# %%
text = R.results_markdown(results, rulers)
write_text(results_md, text)  # atomic: a reader never sees half a table
print(text, end="")
