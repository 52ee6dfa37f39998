"""Quick look at the ISCC model: ``python -m isac_gym.demo [--seed S] [--tau T] [--alpha A]``.

Samples one paper-default slot (Table I), builds a simple allocation (decoupled beam
directions with an even power split, max-SINR combiners, a fixed offloading fraction,
CPU frequencies at their latency bounds) and prints the true model's numbers.
"""

from __future__ import annotations

import argparse

import numpy as np

from isac_gym.iscc import (
    Allocation,
    ISCCConfig,
    beam_directions,
    comm_combiners,
    evaluate,
    sample_snapshot,
    sensing_combiners,
)
from isac_gym.units import linear_to_db, watt_to_dbm


def simple_allocation(snapshot, alpha: float) -> Allocation:
    """Even power split on decoupled directions; CPUs just fast enough for tau."""
    f_dir, u_dir = beam_directions(snapshot)
    f = f_dir * np.sqrt(snapshot.P_max / 2)
    u = u_dir * np.sqrt(snapshot.P_max / 2)
    w, w_tilde = comm_combiners(snapshot, f, u), sensing_combiners(snapshot, f, u)
    alpha = np.full(snapshot.K, alpha)
    probe = evaluate(
        snapshot, Allocation(alpha, snapshot.C_u, np.ones(snapshot.K), f, u, w, w_tilde), 1.0
    )
    work = snapshot.varpi * snapshot.Q
    f_u = (1 - alpha) * work / snapshot.tau
    f_ap = alpha * work / np.maximum(snapshot.tau - probe.t_com, 1e-9)
    return Allocation(alpha, f_u, f_ap, f, u, w, w_tilde)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tau", type=float, default=0.4, help="latency budget [s]")
    parser.add_argument("--alpha", type=float, default=0.76, help="offloading fraction")
    args = parser.parse_args(argv)
    if not 0.0 <= args.alpha <= 1.0:
        parser.error("--alpha must be in [0, 1]")

    config = ISCCConfig.paper(tau=args.tau)
    snapshot = sample_snapshot(config, np.random.default_rng(args.seed))
    ev = evaluate(snapshot, simple_allocation(snapshot, args.alpha), config.per_ue("beta"))

    print(
        f"ISCC paper defaults: K={config.K}, M={config.M_a}, f_c={config.f_c / 1e9:g} GHz, "
        f"B={config.B / 1e6:g} MHz, P_max={float(watt_to_dbm(config.P_max)):.0f} dBm, "
        f"tau={args.tau:g} s, beta={config.beta}, seed={args.seed}"
    )
    rows = [
        ("distance to AP [m]", snapshot.distance_ap, "{:10.1f}"),
        ("distance to target [m]", snapshot.distance_target, "{:10.1f}"),
        ("comm SINR (7) [dB]", linear_to_db(ev.sinr_c), "{:10.1f}"),
        ("sensing SINR (8) [dB]", linear_to_db(ev.sinr_s), "{:10.1f}"),
        ("rate (9) [Mbit/s]", ev.rate / 1e6, "{:10.1f}"),
        ("t_local (10) [ms]", ev.t_local * 1e3, "{:10.2f}"),
        ("t_com (11) [ms]", ev.t_com * 1e3, "{:10.2f}"),
        ("t_off (11) [ms]", ev.t_off * 1e3, "{:10.2f}"),
        ("E_isac (13) [mJ]", ev.energy_isac * 1e3, "{:10.4f}"),
        ("E_local (14) [mJ]", ev.energy_local * 1e3, "{:10.3f}"),
        ("E_ap (15) [mJ]", ev.energy_ap * 1e3, "{:10.3f}"),
        ("feasible (58)", ev.feasible, "{!s:>10}"),
    ]
    print(f"{'UE':<26}" + "".join(f"{k:>10}" for k in range(config.K)))
    for label, values, fmt in rows:
        print(f"{label:<26}" + "".join(fmt.format(v) for v in values))
    print(f"weighted cost (17a): {ev.cost:.5f} J    alpha = {args.alpha:g} for every UE")
    for k, names in ev.violations().items():
        print(f"UE {k} violates: {', '.join(names)}")


if __name__ == "__main__":
    main()
