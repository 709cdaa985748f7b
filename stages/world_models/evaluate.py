"""wm_evaluate: both controllers and two baselines over the same full-length real episodes, and in the dream
-> metrics/world_models.json, metrics/world_models.meta.json, samples/world_models.npz.

The headline controller (world_models.evaluate.controller) is at the top level of the metrics with its
`return_mean`, `return_std` and `dream_return_mean`; the other controller under `<mode>_trained`; the
random policy under `baseline` and the constant "accelerate straight" policy under `constant`, with the
same keys. V's held-out reconstruction error and M's next-z NLL come along (their baselines under
`baseline`). samples/world_models.npz holds what the report draws.
"""

from __future__ import annotations

import json
import sys
import time

import gymnasium
import numpy as np

from gdl.arrays import save_arrays
from gdl.atomic import write_json
from gdl.world_models import controller as C
from gdl.world_models import vae as V
from gdl.world_models.rollouts import ACTION_HIGH, ACTION_LOW, ZOOM_STEPS, RolloutError
from stages.common import fail
from stages.world_models import (
    EPISODES,
    META,
    METRICS,
    MODELS,
    MODES,
    TAG_EVALUATE,
    VAE,
    agent_files,
    controller_path,
    load_latents,
    load_shards,
    run,
    split_latents,
    wm_seed,
    workers,
)
from stages.world_models.controller import Dream


def evaluation_seeds(params, count: int) -> list[int]:
    state = np.random.SeedSequence([wm_seed(params), TAG_EVALUATE]).generate_state(count, dtype=np.uint32)
    return [int(s) for s in state]


DESCRIPTIONS = {
    "return_mean": "mean return of full-length real CarRacing-v3 episodes, the same seeds for every policy "
                   "(higher is better)",
    "return_std": "standard deviation of those returns over the episodes",
    "dream_return_mean": "mean return of episodes dreamed by M (its reward head), as long as the real ones "
                         "(higher is better)",
    "reconstruction_mse": "V's mean squared error per pixel value (in [0, 1]) on held-out frames (lower is better)",
    "next_z_nll": "M's negative log-likelihood of the next latent on held-out episodes, nats per latent "
                  "dimension (lower is better)",
}


def dream_vs_real(params, stage: str, dream: Dream, temperature: float):
    """For the report: the frames of the first held-out rollout, and M's dream of it: z_0 from its first
    frame, then M fed the actions really taken. -> (real frames, dreamed latents, actions)."""
    latents = load_latents(stage)
    held_out = latents["validation"] if latents["validation"].any() else np.ones_like(latents["validation"])
    episode = split_latents(latents, bool(latents["validation"].any()))
    first = int(np.flatnonzero(np.repeat(held_out, latents["episode_lengths"]))[0])
    length = int(episode["episode_lengths"][0])
    real = load_shards(params, stage)["frames"][first:first + length]
    rng = np.random.default_rng([wm_seed(params), TAG_EVALUATE, 2])
    z, state = episode["mu"][:1].astype(np.float32), dream.model.initial_state(1)
    dreamed = [z[0]]
    for t in range(length - 1):
        z, _, _, state, _ = dream.module.step(dream.model, z, episode["actions"][t:t + 1], state, temperature, rng)
        dreamed.append(z[0])
    return real, np.stack(dreamed), episode["actions"][:length]


def evaluate(params, stage: str) -> None:
    ev, cfg = params.world_models.evaluate, params.world_models
    seeds = evaluation_seeds(params, ev.episodes)
    steps = ev.max_steps - ZOOM_STEPS  # recorded steps: 1000 env steps (gymnasium's limit) less the zoom's 49
    files = agent_files()
    policies = [(f"controller ({mode})", C.POLICY, {"controller": str(controller_path(mode)), **files})
                for mode in MODES]
    policies += [("policy random", "random", {}), ("policy constant", "constant", {})]
    started = time.perf_counter()
    print(f"{stage}: {len(policies)} policies x {len(seeds)} full-length episodes", flush=True)
    try:
        played = C.play(policies, seeds, steps, workers(params), keep=[True, True, False, False])
    except RolloutError as exc:
        fail(stage, f"{exc} (nothing written)")
    print(f"{stage}: real episodes in {time.perf_counter() - started:.0f} s", flush=True)

    # The dream: at least 16 episodes per policy, as long as the real ones.
    dream = Dream(stage)
    temperature = cfg.controller.dream.temperature
    rng = np.random.default_rng([wm_seed(params), TAG_EVALUATE, 1])
    agents = max(ev.episodes, 16)
    dreamed = {mode: dream.returns(np.load(controller_path(mode))[None], agents, steps, temperature, rng,
                                   per_trial=True)[0] for mode in MODES}
    dreamed["random"] = dream.policy_returns(
        lambda z, h: rng.uniform(ACTION_LOW, ACTION_HIGH, (len(z), 3)).astype(np.float32), agents, steps,
        temperature, rng)
    dreamed["constant"] = dream.policy_returns(
        lambda z, h: np.tile(np.array([0.0, 1.0, 0.0], np.float32), (len(z), 1)), agents, steps, temperature, rng)

    names = ["real", "dream", "random", "constant"]
    returns = {name: np.array([e["return"] for e in row]) for name, row in zip(names, played)}

    def figures(name):
        return {"return_mean": float(returns[name].mean()), "return_std": float(returns[name].std()),
                "dream_return_mean": float(dreamed[name].mean())}

    vae_figures = json.loads((MODELS / "vae.json").read_text())["figures"]
    m_figures = json.loads((MODELS / "mdnrnn.json").read_text())["figures"]
    head, other = ev.controller, "dream" if ev.controller == "real" else "real"
    metrics = {**figures(head),
               "reconstruction_mse": vae_figures["reconstruction_mse"],
               "next_z_nll": m_figures["next_z_nll"],
               f"{other}_trained": figures(other),
               "baseline": {**figures("random"), "reconstruction_mse": vae_figures["mean_frame_mse"],
                            "next_z_nll": m_figures["baseline_next_z_nll"]},
               "constant": figures("constant")}

    real, dream_frames, dream_actions = dream_vs_real(params, stage, dream, temperature)
    vae = V.load_vae(VAE, compile=False)
    head_row = played[names.index(head)]
    order = np.argsort([e["return"] for e in head_row], kind="stable")
    best, worst = head_row[order[-1]], head_row[order[0]]
    samples = {
        "real_frames": real, "reconstructions": V.reconstruct(vae, real[:64]),
        "dream_frames": V.decode(vae, dream_frames), "dream_actions": dream_actions,
        "best_frames": best["frames"], "best_rewards": best["rewards"],
        "worst_frames": worst["frames"], "worst_rewards": worst["rewards"],
        "episode_seeds": np.array(seeds, np.int64),
        **{f"returns_{name}": returns[name] for name in names},
        **{f"dream_returns_{name}": np.asarray(dreamed[name], np.float64) for name in names},
    }
    controllers = {mode: json.loads((MODELS / f"controller_{mode}.json").read_text())["history"] for mode in MODES}
    meta = {"model": "world_models", "family": "world_models", "dataset": "carracing", "seed": wm_seed(params),
            "episodes": ev.episodes, "episode_seeds": seeds, "headline_controller": head,
            "baseline": "a random policy (each action uniform in the box), on the same episode seeds; for V the "
                        "mean training frame, for M z(t+1) ~ N(z(t), sigma^2 fitted on the training pairs)",
            "constant": "accelerate straight (steer 0, gas 1, brake 0) on the same episode seeds",
            "descriptions": DESCRIPTIONS, "dream_temperature": temperature, "dream_agents": agents,
            "vae": vae_figures, "mdnrnn": m_figures,
            "controllers": {mode: {"generations": len(h), "evaluations": h[-1]["evaluations"] if h else 0}
                            for mode, h in controllers.items()},
            "versions": {"gymnasium": gymnasium.__version__}}
    save_arrays(EPISODES, samples)
    write_json(META, meta)
    write_json(METRICS, metrics)
    for name in names:
        print(f"{stage}: {name:>8}: real return {returns[name].mean():7.1f} +- {returns[name].std():5.1f}, "
              f"dream {dreamed[name].mean():7.1f}")


if __name__ == "__main__":
    sys.exit(run("wm_evaluate", __doc__, evaluate))
