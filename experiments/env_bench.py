"""Environment speed: ``python -m experiments.env_bench [--vector] [--episodes E] ...``.

Without ``--vector``: per oracle and policy, steps/s, the mean step time, the mean time
of the oracle calls the step contains (``info["oracle_time_s"]``: the whole
``optimizers.iscc.solve`` calls, true-model evaluation included) and their ratio,
measured in the same run over ``--episodes`` whole episodes (seeds ``seed + i``) of
``--horizon`` slots, with two policies: ``random`` (uniform actions) and ``draining``
(beta = 100: the UEs compute locally and their batteries run down, so fallback and
drop-cause solves appear). The easy start of one episode alone (full batteries)
overstates the speed about 3x.

``--vector``: steps/s of the native vector env (``ISCCVectorEnv``: one batched oracle
call per round) against N (``--sizes``, default 1 8 64 256) for each oracle and policy,
one whole episode per env (env i seeded ``seed + i``), and for N in ``--sync-sizes``
(default 64) ``SyncVectorEnv`` over the same episodes in the same run (native and sync
interleaved policy by policy) with the ratio, in wall-clock steps/s and in steps per CPU
second of this process (steadier on a shared machine); then a profile summary of where
a batched step spends its time (N = 64, ``fast``, ``draining``).

``--compare-oracles`` instead records the per-slot problems the environment hands to
its oracle (batteries as energy budgets, background load as reduced C_ap, the drop-cause
relaxations) over ``--steps`` random-beta steps, solves each with ``fast`` and
``sca_admm`` and prints how often and by how much they differ, and their times.

Set ``OPENBLAS_NUM_THREADS=1``: on 64 x 64 matrices one BLAS thread is several times
faster.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import time

import gymnasium as gym
import numpy as np

import isac_gym  # noqa: F401  (registers the ids)
import optimizers

ENV_ID = "isac_gym/ISCC-v0"
POLICIES = ("random", "draining")
#: action of the battery-draining policy: beta = 10^2, the AP's energy is dear
_DRAINING_ACTION = 1.0


def policy_actions(policy: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """One step's actions of ``policy`` (``random`` or ``draining``)."""
    if policy == "random":
        return rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    if policy == "draining":
        return np.full(shape, _DRAINING_ACTION, np.float32)
    raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")


def measure(
    oracle: str, episodes: int, policy: str = "random", seed: int = 0, **config
) -> dict[str, float]:
    """Mean step and oracle times [ms] over ``episodes`` whole episodes (seeds seed + i)."""
    env = gym.make(ENV_ID, oracle=oracle, **config)
    rng = np.random.default_rng(seed)
    steps = drops = 0
    step_time = oracle_time = 0.0
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        truncated = terminated = False
        while not (truncated or terminated):
            action = policy_actions(policy, env.action_space.shape, rng)
            start = time.perf_counter()
            _, _, terminated, truncated, info = env.step(action)
            step_time += time.perf_counter() - start
            oracle_time += float(info["oracle_time_s"])
            drops += sum(info["drops"].values())
            steps += 1
    return {
        "steps": steps,
        "steps_per_s": steps / step_time,
        "step_ms": 1e3 * step_time / steps,
        "oracle_ms": 1e3 * oracle_time / steps,
        "overhead": step_time / oracle_time - 1.0,
        "drops_per_step": drops / steps,
    }


def vector_episodes(envs, policy: str, seed: int, horizon: int) -> tuple[int, float, float]:
    """Run one whole episode (``horizon`` slots) in every env of ``envs``: (env steps,
    wall seconds and CPU seconds spent stepping)."""
    rng = np.random.default_rng(seed)
    envs.reset(seed=seed)
    elapsed = cpu = 0.0
    for _ in range(horizon):
        actions = policy_actions(policy, envs.action_space.shape, rng)
        start, start_cpu = time.perf_counter(), time.process_time()
        envs.step(actions)
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
    return horizon * envs.num_envs, elapsed, cpu


def make_vector(kind: str, num_envs: int, oracle: str, **config):
    """The native vector env or ``SyncVectorEnv`` of ``num_envs`` ISCC-v0 envs."""
    mode = "vector_entry_point" if kind == "native" else "sync"
    return gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode=mode, oracle=oracle, **config)


def vector_table(oracles, sizes, sync_sizes, horizon: int, seed: int = 0, **config):
    """Yield rows ``oracle, policy, N, native, sync`` [env steps/s] and ``native_cpu``,
    ``sync_cpu`` [env steps per CPU second] (sync: NaN if not run)."""
    for oracle in oracles:
        for num_envs in sizes:
            kinds = ("native", "sync") if num_envs in sync_sizes else ("native",)
            envs = {
                kind: make_vector(kind, num_envs, oracle, horizon=horizon, **config)
                for kind in kinds
            }
            for policy in POLICIES:
                row = {"oracle": oracle, "policy": policy, "N": num_envs}
                row.update(sync=np.nan, sync_cpu=np.nan)
                for kind, vector_env in envs.items():  # interleaved, same episodes
                    steps, seconds, cpu = vector_episodes(vector_env, policy, seed, horizon)
                    row[kind], row[f"{kind}_cpu"] = steps / seconds, steps / cpu
                yield row
            for vector_env in envs.values():
                vector_env.close()


def profile_vector_step(
    horizon: int, num_envs: int = 64, oracle: str = "fast", seed: int = 0, **config
) -> list[tuple[str, float]]:
    """Shares of a native vector step's time (the ``draining`` policy over one episode
    per env, resets left out): ``(part, fraction of the step)``."""
    envs = make_vector("native", num_envs, oracle, horizon=horizon, **config)
    rng = np.random.default_rng(seed)
    envs.reset(seed=seed)
    profiler = cProfile.Profile(time.process_time)  # CPU time: steadier on a shared machine
    for _ in range(horizon):
        actions = policy_actions("draining", envs.action_space.shape, rng)
        profiler.runcall(envs.step, actions)
    envs.close()
    total: dict[str, float] = {}
    for (filename, _, name), (_, _, _, cumulative, _) in pstats.Stats(profiler).stats.items():
        if "isac_gym" in filename or "gymnasium" in filename:
            total[name] = max(total.get(name, 0.0), cumulative)
    parts = {
        "oracle (solve_batch, evaluation included)": total["solve_batched"],
        "allocation rounds (UE selection, grouping)": total["run_rounds"] - total["solve_batched"],
        "slot sampling (draws; channels of all envs at once)": total["_draw_slot"]
        + total["place_channels"],
        "dynamics, reward, info": total["_settle_step"] - total["_draw_slot"],
        "slot problems (budgets, reserve)": total["_slot_problem"],
        "observations": total["_observation"],
        "vector infos": total["_vector_infos"],
    }
    return [(part, seconds / total["step"]) for part, seconds in parts.items()]


@contextlib.contextmanager
def recorded_oracle_calls():
    """Record ``(snapshot, beta, options)`` of every ``optimizers.iscc.solve`` call meanwhile.

    The environment looks ``optimizers.iscc.solve`` up at each step, so wrapping it there
    sees exactly the problems the oracle gets.
    """
    calls, original = [], optimizers.iscc.solve

    def recording(snapshot, beta, method="sca_admm", **options):
        calls.append((snapshot, beta, options))
        return original(snapshot, beta, method=method, **options)

    optimizers.iscc.solve = recording
    try:
        yield calls
    finally:
        optimizers.iscc.solve = original


def compare_oracles(steps: int, seed: int = 0, **config) -> dict[str, float]:
    """``fast`` vs ``sca_admm`` on the oracle problems of ``steps`` random-beta steps."""
    env = gym.make("isac_gym/ISCC-v0", oracle="fast", **config)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    with recorded_oracle_calls() as calls:
        for _ in range(steps):
            _, _, _, truncated, _ = env.step(env.action_space.sample())
            if truncated:
                env.reset()
    served = {"fast": 0, "sca_admm": 0}
    times = {"fast": [], "sca_admm": []}
    gains, more, fewer = [], 0, 0
    for snapshot, beta, options in calls:
        result = {}
        for method in ("fast", "sca_admm"):
            start = time.perf_counter()
            result[method] = optimizers.iscc.solve(snapshot, beta, method=method, **options)
            times[method].append(time.perf_counter() - start)
            served[method] += int(result[method].feasible.sum())
        fast, sca = result["fast"], result["sca_admm"]
        more += int(sca.feasible.sum() > fast.feasible.sum())
        fewer += int(sca.feasible.sum() < fast.feasible.sum())
        # Costs (17a) over the UEs both serve: an unserved UE's best-effort cost means
        # nothing, so it is left out.
        both = fast.feasible & sca.feasible
        if both.any():
            gains.append(1.0 - sca.evaluation.cost_of(both) / fast.evaluation.cost_of(both))
    gains = np.asarray(gains)
    return {
        "problems": len(calls),
        "ues": sum(s.K for s, _, _ in calls),
        "served_fast": served["fast"],
        "served_sca_admm": served["sca_admm"],
        "sca_admm_serves_more": more,
        "sca_admm_serves_fewer": fewer,
        "sca_admm_cheaper": int(np.sum(gains > 1e-6)),
        "sca_admm_dearer": int(np.sum(gains < -1e-6)),
        "max_saving": float(gains.max(initial=0.0)),
        "mean_saving": float(gains.mean()) if gains.size else 0.0,
        "max_loss": max(0.0, float(-gains.min(initial=0.0))),
        "fast_ms": 1e3 * float(np.median(times["fast"])),
        "sca_admm_ms": 1e3 * float(np.median(times["sca_admm"])),
    }


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    config = {"preset": args.preset}
    if args.compare_oracles:
        print_comparison(args.steps, args.seed, args.preset)
    elif args.vector:
        horizon = args.horizon or 100
        print_vector(args.oracle, args.sizes, args.sync_sizes, horizon, args.seed, config)
    else:
        if args.horizon:
            config["horizon"] = args.horizon
        print_single(args.oracle, args.episodes, args.seed, config)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--oracle", nargs="+", default=["sca_admm", "fast"])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=_positive, default=3, help="episodes (seeds) per row")
    parser.add_argument(
        "--horizon",
        type=_positive,
        default=None,
        help="slots per episode (default: env's, 100 with --vector)",
    )
    parser.add_argument("--vector", action="store_true", help="native vector env against N")
    parser.add_argument("--sizes", type=_positive, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--sync-sizes", type=_positive, nargs="*", default=[64])
    parser.add_argument(
        "--compare-oracles", action="store_true", help="fast vs sca_admm on the env's problems"
    )
    parser.add_argument("--steps", type=_positive, default=200, help="steps of --compare-oracles")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def print_single(oracles, episodes: int, seed: int, config: dict) -> None:
    print(f"{ENV_ID} {config}, {episodes} whole episodes (seeds {seed}..{seed + episodes - 1})")
    print(
        f"{'oracle':>9} {'policy':>9} {'steps/s':>8} {'step ms':>8} {'oracle ms':>9} "
        f"{'overhead':>9} {'drops/step':>10}"
    )
    for oracle in oracles:
        for policy in POLICIES:
            r = measure(oracle, episodes, policy, seed, **config)
            print(
                f"{oracle:>9} {policy:>9} {r['steps_per_s']:8.1f} {r['step_ms']:8.2f} "
                f"{r['oracle_ms']:9.2f} {100 * r['overhead']:8.1f}% {r['drops_per_step']:10.3f}"
            )


def print_vector(oracles, sizes, sync_sizes, horizon: int, seed: int, config: dict) -> None:
    print(
        f"{ENV_ID} {config}: env steps/s, one whole {horizon}-slot episode per env "
        f"(env i: seed {seed} + i); native = ISCCVectorEnv, sync = SyncVectorEnv"
    )
    print("(wall-clock steps/s, then per CPU second: the steadier figure on a shared machine)")
    print(
        f"{'oracle':>9} {'policy':>9} {'N':>4} {'native':>9} {'sync':>9} {'ratio':>6} "
        f"{'native cpu':>10} {'sync cpu':>9} {'ratio cpu':>9}"
    )
    for row in vector_table(oracles, sizes, sync_sizes, horizon, seed, **config):
        print(
            f"{row['oracle']:>9} {row['policy']:>9} {row['N']:>4} {row['native']:9.1f} "
            f"{row['sync']:9.1f} {row['native'] / row['sync']:6.2f} {row['native_cpu']:10.1f} "
            f"{row['sync_cpu']:9.1f} {row['native_cpu'] / row['sync_cpu']:9.2f}"
        )
    print(f"profile of a native step (N = 64, fast, draining, {horizon} slots):")
    for part, share in profile_vector_step(horizon, seed=seed, **config):
        print(f"  {100 * share:5.1f} %  {part}")


def print_comparison(steps: int, seed: int, preset: str) -> None:
    r = compare_oracles(steps, seed, preset=preset)
    print(
        f"isac_gym/ISCC-v0 preset={preset}, {steps} random-beta steps, seed "
        f"{seed}: {r['problems']} oracle problems, {r['ues']} UE tasks\n"
        f"served: fast {r['served_fast']}, sca_admm {r['served_sca_admm']} (sca_admm "
        f"serves more on {r['sca_admm_serves_more']}, fewer on "
        f"{r['sca_admm_serves_fewer']} problems)\n"
        f"cost of the UEs both serve: sca_admm cheaper by > 1e-6 on "
        f"{r['sca_admm_cheaper']}, dearer on {r['sca_admm_dearer']} problems; largest "
        f"saving {100 * r['max_saving']:.2f} %, largest loss {100 * r['max_loss']:.2f} %, "
        f"mean saving {100 * r['mean_saving']:.3f} %\n"
        f"median time per problem: fast {r['fast_ms']:.2f} ms, sca_admm "
        f"{r['sca_admm_ms']:.2f} ms"
    )


if __name__ == "__main__":
    main()
