# %% [markdown]
# *The code is hidden in this page: the executed notebook `reports/world_models.ipynb` beside it has it. It
# runs `reports/templates/world_models.py`; the helpers are in `gdl/reporting.py`, the models in
# `gdl/world_models/`, the stages in `stages/world_models/`. Rebuild with `dvc repro wm_report`.*

# %% tags=["parameters"]
# Parameters (the report stage injects its values after this cell).
model = "world_models"

# %% tags=["title"]
import numpy as np

from gdl import reporting as R

report = R.load_world_models_report()
metrics, meta, episodes = report.metrics, report.meta, report.episodes
R.say("# World Models: CarRacing-v3\n\nHa & Schmidhuber (2018), the book's chapter 12. **V**, a convolutional VAE, "
      "squeezes each 64x64 frame into a latent z of 32 numbers; **M**, an LSTM with a mixture-density head, "
      "predicts the next z (and the reward, and whether the episode ends) from z and the action; **C**, a linear "
      "map from [z, h] (h: M's hidden state) to steering, gas and brake, 867 numbers, is found by CMA-ES. "
      "Two controllers are trained: one in the real environment, one entirely inside M's dream.")

# %% [markdown]
# ## Returns
#
# Every policy drives the same full-length real episodes (same tracks, same seeds): the controllers, a
# random policy (the `baseline`) and "accelerate straight" (`constant`). CarRacing pays +1000/N for each
# of the track's N tiles visited and -0.1 per step, so a car that never leaves the start ends near -95.
# The dream column is the same policy's mean return in episodes that M imagines (its reward head), as long
# as the real ones: the gap between the two columns is how far M's world is from the real one.

# %%
import pandas as pd

names = {"real": "controller trained in the real env", "dream": "controller trained in the dream",
         "random": "random policy (baseline)", "constant": "accelerate straight (constant)"}
rows = []
for key, name in names.items():
    real, dream = episodes[f"returns_{key}"], episodes[f"dream_returns_{key}"]
    rows.append({"policy": name, "real return": R.fmt(real.mean(), real.std()),
                 "min / max": f"{real.min():.0f} / {real.max():.0f}", "dream return": R.fmt(dream.mean(), dream.std())})
R.table(pd.DataFrame(rows))
head = meta["headline_controller"]
gain = episodes[f"returns_{head}"].mean() - episodes["returns_random"].mean()
R.say(f"{meta['episodes']} real episodes per policy (± is the standard deviation over episodes), "
      f"{meta['dream_agents']} dreamed ones at temperature {meta['dream_temperature']}. The headline controller "
      f"(`{head}`, the top level of `metrics/world_models.json`) beats the random policy by **{gain:.0f}**.")

# %%
fig, ax = R.subplots(7, 2.8)
bins = np.linspace(min(episodes[f"returns_{k}"].min() for k in names), max(episodes[f"returns_{k}"].max() for k in names), 25)
for key, name in names.items():
    ax.hist(episodes[f"returns_{key}"], bins=bins, alpha=0.55, label=name)
ax.set_xlabel("return of a full real episode")
ax.set_ylabel("episodes")
ax.legend(fontsize=7)
R.show(fig)

# %% [markdown]
# ## V: what the controller sees
#
# Real frames (top) and V's reconstructions through z (bottom), from a held-out rollout. The error is
# next to the mean training frame's: a V that does not beat it has learnt nothing about the frames.

# %%
R.say(f"Reconstruction MSE on held-out frames **{metrics['reconstruction_mse']:.5f}**, the mean frame's "
      f"{metrics['baseline']['reconstruction_mse']:.5f} (pixel values in [0, 1]; {meta['vae']['frames']:,} training "
      f"frames).")
pick = np.linspace(0, len(episodes["reconstructions"]) - 1, 10).astype(int)
_ = R.labelled_rows(np.concatenate([episodes["real_frames"][pick], episodes["reconstructions"][pick]]), 10,
                ["real", "V(real)"], cell=0.9)

# %% [markdown]
# ## M: a dream next to what really happened
#
# M starts from the first frame's z of a held-out rollout and is fed the actions that were really taken;
# each dreamed z is decoded by V. Top: what happened; bottom: what M dreamed would happen.

# %%
R.say(f"Next-z NLL on held-out episodes **{metrics['next_z_nll']:.3f}** nats per latent dimension; the baseline "
      f"z(t+1) ~ N(z(t), sigma^2) gets {metrics['baseline']['next_z_nll']:.3f}.")
length = min(len(episodes["real_frames"]), len(episodes["dream_frames"]))
pick = np.linspace(0, length - 1, 10).astype(int)
_ = R.labelled_rows(np.concatenate([episodes["real_frames"][pick], episodes["dream_frames"][pick]]), 10,
                ["real", "dream"], cell=0.9, title="steps " + ", ".join(str(t) for t in pick))

# %% [markdown]
# ## C: CMA-ES, generation by generation
#
# The best, mean and worst return of the population in each generation (real mode: short real episodes on
# the generation's tracks; dream mode: dreamed episodes). The controller kept is CMA-ES's final mean.

# %%
fig, axes = R.subplots(9, 3, ncols=2)
for ax, mode in zip(axes, ("real", "dream")):
    history = pd.DataFrame(report.controllers[mode]["history"])
    for column, style in (("best", "-"), ("mean", "--"), ("worst", ":")):
        ax.plot(history["generation"], history[column], style, label=column)
    ax.set_title(f"trained in the {mode}" + (" env" if mode == "real" else ""))
    ax.set_xlabel("generation")
    ax.set_ylabel("return")
    ax.legend(fontsize=7)
R.show(fig)

# %% [markdown]
# ## The headline controller's best and worst real episode
#
# Every 40th frame of the episode (the animated GIFs below show every 4th).

# %%
for which in ("best", "worst"):
    frames, rewards = episodes[f"{which}_frames"], episodes[f"{which}_rewards"]
    pick = np.arange(0, len(frames), 40)[:24]
    _ = R.labelled_rows(frames[pick], 12, [""] * (-(-len(pick) // 12)), cell=0.7,
                    title=f"{which} episode: return {rewards.sum():.0f} over {len(frames)} steps")
    R.show_gif(frames[::4], caption=f"{which} episode, every 4th frame")

# %% [markdown]
# ## What was run

# %%
R.say(R.world_models_details(meta))
