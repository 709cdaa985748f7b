# ruff: noqa: F821  (runs in the template's kernel, where R and report are defined)
# The music transformer's own section of its report (jupytext percent format): cells tagged "intro" follow the
# title of reports/templates/tokens.py, the others come after the template's sections. It runs in the
# template's kernel: `R` (gdl.reporting) and `report` (the loaded inputs) are defined there.

# %% [markdown] tags=["intro"]
# The music transformer (book chapter 11) reads a chorale voice as a sequence of events, each a pair of
# tokens: its pitch (or a rest) and its duration in quarter notes. Both streams are embedded, given sine
# position encodings and concatenated; causal self-attention then lets every event look back at the ones
# before it, and two softmax heads predict the next event's pitch and duration. Each stream is scored by
# its per-token negative log-likelihood on the test voices, next to n-gram baselines fitted on the
# training voices; the generated pieces below start from the START event and are written as MIDI files
# by the `midi` stage.

# %%
import music21
import numpy as np
import pandas as pd

from gdl.music import decode_events

notes = report.array("samples", ndim=2)
durations = report.array("sample_durations", ndim=2, length=len(notes))
note_vocab = report.array("note_vocab", ndim=1)
duration_vocab = report.array("duration_vocab", ndim=1)


def timeline(events):
    """(onset, quarter length, MIDI pitch or None for a rest, token) of decoded events, in quarter notes."""
    out, t = [], 0.0
    for token, quarters in events:
        midi = None if token == "rest" else music21.pitch.Pitch(token).midi
        out.append((t, quarters, midi, token))
        t += quarters
    return out


def draw_piece(ax, events, title, colour="tab:blue"):
    """A piano roll of one voice: a bar per note, pitch against time (rests are gaps)."""
    played = [(t, q, m) for t, q, m, _ in timeline(events) if m is not None]
    for t, q, m in played:
        ax.broken_barh([(t, q)], (m - 0.4, 0.8), color=colour)
    if played:
        pitches = [m for *_, m in played]
        ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
        ax.set_xlim(0, max(t + q for t, q, _ in played))
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("MIDI pitch")
    ax.grid(alpha=0.2)


pieces = [decode_events(n, d, note_vocab, duration_vocab) for n, d in zip(notes, durations)]

# %% [markdown]
# ## Generated pieces
#
# Each panel is one generated voice (START, then the drawn events), drawn as a piano roll: pitch against time
# in quarter notes. The grey panel on top is a real voice from the test split, as many events long (or the
# longest there is), for comparison: a voice that learnt the chorales stays in one register, moves mostly by
# steps, and keeps to a few note lengths.

# %%
data = report.data
offsets, length = data["test_offsets"], notes.shape[1]
sizes = np.diff(offsets)
s = int(np.argmax(sizes >= length)) if (sizes >= length).any() else int(np.argmax(sizes))  # a voice this long
cut = slice(offsets[s], offsets[s] + length)
real = decode_events(data["test_note_ids"][cut], data["test_duration_ids"][cut], data["note_vocab"],
                     data["duration_vocab"])
shown = pieces[:4]
fig, axes = R.subplots(10.0, 1.9 * (len(shown) + 1), len(shown) + 1, 1, squeeze=False)
draw_piece(axes[0, 0], real, "a real voice (test split)", colour="0.5")
for i, (ax, piece) in enumerate(zip(axes[1:, 0], shown)):
    draw_piece(ax, piece, f"generated piece {i} ({len(piece)} events)")
axes[-1, 0].set_xlabel("time (quarter notes)")
R.show(fig)

# %% [markdown]
# ### The first events of the first piece
#
# The tokens as the model drew them: the note (or rest) and its duration in quarter notes, and where it starts.

# %%
rows = [{"event": i, "note": token, "duration (quarters)": q, "onset (quarters)": t}
        for i, (t, q, _, token) in enumerate(timeline(pieces[0])[:16])]
R.table(pd.DataFrame(rows))

# %% [markdown]
# ## Attention
#
# What each head of the last block looked at while the first piece was generated (the book's attention
# visualisation): row *t* is the event at *t* attending to the events before it (columns) when the event after
# it was drawn. The model sees at most `seq_len` events, so once the piece is longer than that each row covers
# only its window: the band along the diagonal. Heads that light up a column a fixed distance back track a
# regular pattern (a bar, a beat); heads on the diagonal read the last event or two, as a bigram would.

# %%
attention = report.array("attention", ndim=3)
heads = len(attention)
ncols = min(heads, 3)
nrows = -(-heads // ncols)
fig, axes = R.subplots(3.6 * ncols, 3.5 * nrows, nrows, ncols, squeeze=False)
for h, ax in enumerate(axes.flat):
    if h >= heads:
        ax.axis("off")
        continue
    ax.imshow(attention[h], cmap="viridis", vmin=0, vmax=max(float(np.quantile(attention[h], 0.995)), 1e-6))
    ax.set_title(f"head {h}", fontsize=9)
    ax.set_xlabel("attended event")
    ax.set_ylabel("event")
R.show(fig)
