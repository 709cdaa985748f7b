"""World Models (Ha & Schmidhuber 2018; the book's chapter 12) on CarRacing: rollouts, then V, M and C.

* ``rollouts``: CarRacing-v3 episodes from a random or Brownian policy, 64x64 frames, sharded and seeded,
  played by worker processes;
* ``vae``: V, the paper's conv VAE (z 32);
* ``mdnrnn``: M, an LSTM with a mixture-density head over the next z (plus reward and done heads), and
  the batched dream step;
* ``controller``: C, the linear controller, its fitness in the real env and in the dream, CMA-ES;
* ``files``: V's and M's files (byte-identical for identical weights).

The DVC stages that run them: stages/world_models/.
"""
