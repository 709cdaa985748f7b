# %% [markdown] tags=["intro"]
# The book's chapter 5 text generator: each word is embedded, a recurrent layer (LSTM or GRU, stacked if
# `layers` > 1) reads the words one by one, carrying a state that summarises everything read so far, and a
# dense layer turns the state into a distribution over the next word. Unlike a transformer, the state is all
# the model remembers: a fixed-size vector, however long the window.
