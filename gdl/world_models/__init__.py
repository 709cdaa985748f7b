"""World Models (Ha & Schmidhuber 2018; the book's chapter 12) on CarRacing: rollouts, then V, M and C.

So far: `rollouts` (collecting CarRacing episodes with a random or Brownian policy, in parallel processes).
"""
