# %% [markdown] tags=["intro"]
# A GPT predicts each word from all the words before it through *causal self-attention*: at every position,
# each head scores how relevant each earlier position is (a query-key dot product, softmaxed over the earlier
# positions only) and mixes their values accordingly. The maps below are those scores, as the book's
# chapter 9 draws them.

# %% [markdown]
# ## Attention maps
#
# For each attention prompt, continued by the model at temperature 0.2: the last block's attention weights,
# one panel per head. Row *t* is the word being processed (it predicts the word after it), column *s* an
# earlier word; darker = more weight. Each row sums to 1; the upper triangle is empty because a word never
# sees the future. Heads often specialise: one attends to the previous word, another to the start of the
# sentence or to a related noun.

# %%
import numpy as np

attention = report.array("attention", ndim=4)  # (prompts, heads, t, t)
tokens = report.array("attention_tokens", ndim=2, length=len(attention))
vocab = report.data["vocab"]
for p in range(len(attention)):
    n = int((tokens[p] != 0).sum())
    words = [str(vocab[i]) for i in tokens[p][:n]]
    heads = attention.shape[1]
    # Height for the square maps plus the rotated words under them (at 4.4 in, "statement" lost its "s").
    fig, axes = R.subplots(4.2 * heads, 4.0 + 0.09 * max(map(len, words)), ncols=heads, squeeze=False)
    for h in range(heads):
        ax = axes[0, h]
        ax.imshow(attention[p, h, :n, :n], cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n))
        ax.set_xticklabels(words, rotation=90, fontsize=8)
        ax.set_yticks(range(n))
        ax.set_yticklabels(words, fontsize=8)
        ax.set_title(f"head {h + 1}")
    fig.suptitle(f"“{' '.join(words)}”", fontsize=10)
    R.show(fig)
