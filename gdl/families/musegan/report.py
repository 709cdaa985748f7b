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
