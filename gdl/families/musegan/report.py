# %% [markdown] tags=["intro"]
# The book's chapter 11 MuseGAN writes four voices (soprano, alto, tenor, bass) of two bars at once. Its
# generator draws four kinds of noise: *chords* (one vector, unrolled over the bars: the harmony), *style*
# (one vector for everything), and per voice a *melody* (unrolled over the bars) and a *groove* (the same in
# every bar). A bar generator per voice turns them into that voice's bar; a WGAN-GP critic reads all four
# voices and both bars at once.

# %% [markdown]
# ## Generated bars
#
# Piano rolls, one colour per voice, a bar line at step 16: generated pieces (top two rows) and training
# pieces (bottom row) for comparison. The chorales move mostly by steps, hold notes for an eighth or longer,
# and keep the voices in their registers and in one harmony. The MIDI files of the first eight pieces are in
# `samples/<model>_midi/` (stage `midi@<model>`).

# %%
import numpy as np

from gdl import music

samples = report.samples()
lowest = int(report.array("lowest_pitch", ndim=1)[0])
train = report.data["train_pianorolls"]
picks = [("generated", samples[i]) for i in range(6)] + [("training", train[i]) for i in np.linspace(0, len(train) - 1, 3).astype(int)]
fig, axes = R.subplots(13.5, 9.0, nrows=3, ncols=3)
for ax, (kind, roll) in zip(axes.flat, picks):
    music.plot_pianoroll(ax, roll, lowest, title=kind)
    ax.axvline(roll.shape[1] - 0.5, color="0.6", lw=0.8)
    ax.legend().set_visible(ax is axes.flat[0])
R.show(fig)

# %% [markdown]
# ## One noise at a time
#
# One generated piece (left column), then the same piece with one noise redrawn, three times, row by row:
# *chords* should move every voice's harmony, *style* the whole piece, a *melody* or *groove* change (here of
# the soprano's) mostly the soprano.

# %%
changed = report.array("one_noise_changed", ndim=6)  # (noises, variations, bars, steps, pitches, tracks)
names = ["chords", "style", "melody (soprano)", "groove (soprano)"]
fig, axes = R.subplots(4.2 * changed.shape[1], 2.8 * len(changed), nrows=len(changed), ncols=changed.shape[1])
for k in range(len(changed)):
    for v in range(changed.shape[1]):
        ax = axes[k, v]
        music.plot_pianoroll(ax, changed[k, v], lowest, title=f"{names[k]}: {'original' if v == 0 else f'redrawn {v}'}")
        ax.legend().set_visible(False)
        ax.set_xlabel("")
R.show(fig)

# %% [markdown]
# ## Whole-bar rests
#
# The share of pieces in which a voice rests for a whole bar, per bar and voice, in 1,000 samples and in the
# training pieces (the EB statistic, split up). The rests of the chorales mostly come several voices at once;
# the samples' coins are drawn independently given the noises, so how often a sampled rest comes with another
# voice resting in the same bar says whether the generator learnt that too. (The training curve `plays`
# above is the generator's mean probability that a voice plays in a bar: one minus the first row below.)

# %%
import pandas as pd

from gdl.families.musegan.metrics import playing

tracks = [str(t) for t in report.array("tracks", ndim=1)]
rests = {"samples": ~playing(samples), "training data": ~playing(train)}  # (pieces, bars, tracks)


def with_another(r):
    """Of the (bar, voice) rests, the share with at least one other voice resting in the same bar."""
    return float((r & (r.sum(axis=2, keepdims=True) >= 2)).sum() / max(r.sum(), 1))


fig, ax = R.subplots(9.0, 3.0)
labels = [f"bar {b + 1}\n{t}" for b in range(samples.shape[1]) for t in tracks]
x = np.arange(len(labels))
for i, (name, r) in enumerate(rests.items()):
    ax.bar(x + (i - 0.5) * 0.4, 100 * r.mean(axis=0).ravel(), width=0.4, label=name)
ax.set_xticks(x, labels, fontsize=8)
ax.set_ylabel("% of pieces resting")
ax.legend()
R.show(fig)
R.table(pd.DataFrame({name: {"(bar, voice) pairs resting": f"{100 * r.mean():.2f}%",
                             "rests with another voice resting too": f"{100 * with_another(r):.0f}%"}
                      for name, r in rests.items()}).rename_axis("statistic"))
