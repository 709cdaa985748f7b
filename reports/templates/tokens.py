# %% [markdown]
# *The code is hidden in this page: the executed notebook `reports/<model>.ipynb` beside it has it. It runs
# `reports/templates/tokens.py` (the report of every model that generates token sequences: text, or music as
# note and duration streams) followed by the model family's own section, `gdl/families/<family>/report.py`;
# the helpers are in `gdl/reporting.py`. Rebuild with `dvc repro`.*

# %% tags=["parameters"]
# Parameters (the report stage injects its values after this cell).
model = "lstm"
family = "lstm"
title = "LSTM text generator"

# %% tags=["title"]
from gdl import reporting as R

report = R.load_model_report(model, kind="tokens")
R.say(f"# {title}: `{model}`\n\nFamily `{family}`, trained on the **{report.dataset}** dataset "
      f"(token ids: `{report.meta.get('data', '?')}`).")

# %% [markdown]
# ## Metrics
#
# Measured on the held-out test split by the `evaluate` stage: the negative log-likelihood of every test
# token given the tokens before it in its window, in nats per token, and its exponential, the perplexity.
# ± is a bootstrap standard deviation over the test windows: two models closer than that are not told apart
# by this test split. The baselines are fitted on the training split and scored on exactly the same windows:
# a *unigram* model (each token's smoothed frequency, no context at all) and a *bigram* model (Kneser-Ney:
# which token tends to follow which). The table's baseline is the better of the two; a model that does not
# beat it has learnt nothing beyond one token of context.

# %%
rows = R.show_metrics(report)
R.table(R.ngram_frame(report))

# %% [markdown]
# ## Training curves
#
# The loss (mean cross-entropy per token, nats; padding not counted) on the training windows and on the
# validation split after every epoch. A validation loss that turns upward while the training loss keeps
# falling is over-fitting. The star marks the epoch with the lowest validation loss.

# %%
R.show_history(report)

# %%
# Text samples (a music model's section below draws its pieces instead).
if report.has("texts"):
    R.say("## Samples\n\nContinuations drawn word by word from the model, each prompt at each temperature (the "
          "prompt in **bold**). The temperature divides the model's log-probabilities before sampling: 1 samples "
          "the model as it is, lower values sharpen it toward its favourite words (safer, more repetitive), as "
          "the book's chapters 5 and 9 show.")
    R.show_text_samples(report)

# %% [markdown] tags=["appendix"]
# ### Inputs of this report
#
# SHA-256 prefixes of the files read (`dvc.lock` records the full hashes).

# %% tags=["appendix"]
R.say(R.provenance(report.inputs))
