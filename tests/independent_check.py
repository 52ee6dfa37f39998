"""An independent judge of (17b)-(17g) and the energy budget, written one UE and one term
at a time from the paper's equations, sharing no code with ``isac_gym.iscc.evaluate``.

Tests use it to check a solver's or ``evaluate``'s verdict ``feasible`` against an oracle
that is not the definition of that verdict.
"""

import numpy as np

RTOL = 1e-6  # the documented tolerance of every check (model.FEASIBILITY_RTOL)


def _time(work, speed):
    """work / speed with 0 / y = 0 and x / 0 = inf (the model's documented convention)."""
    if work <= 0:
        return 0.0
    return work / speed if speed > 0 else np.inf


def _sinrs(snap, a, k):
    """(7) and (8) for UE k, literally."""
    K, w, wt = snap.K, a.w[k], a.w_tilde[k]
    others = [j for j in range(K) if j != k]
    share = None if a.bandwidth_share is None else a.bandwidth_share[k]
    comm = lambda j, x: abs(w.conj() @ snap.H[j] @ x[j]) ** 2  # noqa: E731
    sense = lambda j, x: abs(wt.conj() @ snap.H_sense[j] @ x[j]) ** 2  # noqa: E731
    if share is None:
        interference_c = sum(comm(j, a.u) for j in range(K)) + sum(comm(j, a.f) for j in others)
        interference_s = sum(sense(j, a.f) for j in range(K)) + sum(sense(j, a.u) for j in others)
        noise_scale = 1.0
    else:  # orthogonal access: own leakage only, noise in the share
        interference_c, interference_s, noise_scale = comm(k, a.u), sense(k, a.f), share
    noise_c = noise_scale * snap.noise * np.linalg.norm(w) ** 2
    noise_s = noise_scale * snap.noise * np.linalg.norm(wt) ** 2
    return comm(k, a.f) / (interference_c + noise_c), sense(k, a.u) / (interference_s + noise_s)


def feasible_per_ue(snap, a) -> np.ndarray:
    """I_k of (58): every constraint of UE k holds (tolerance RTOL)."""
    K, ok = snap.K, np.zeros(snap.K, bool)
    tol = 1 + RTOL
    ap_sum_ok = float(np.sum(a.f_ap)) <= snap.C_ap * tol
    for k in range(K):
        sinr_c, sinr_s = _sinrs(snap, a, k)
        share = 1.0 if a.bandwidth_share is None else a.bandwidth_share[k]
        rate = share * snap.B * np.log2(1 + sinr_c)
        alpha, Q, varpi = a.alpha[k], snap.Q[k], snap.varpi[k]
        t_com = _time(alpha * Q, rate)
        t_off = t_com + _time(varpi * alpha * Q, a.f_ap[k])
        latency = max(_time(varpi * (1 - alpha) * Q, a.f_u[k]), t_off)
        power = np.linalg.norm(a.f[k]) ** 2 + np.linalg.norm(a.u[k]) ** 2
        energy_ue = power * t_com + snap.xi_u[k] * a.f_u[k] ** 2 * varpi * (1 - alpha) * Q
        ok[k] = (
            sinr_s * tol >= snap.gamma_s
            and latency <= snap.tau[k] * tol
            and 0 <= a.f_u[k] <= snap.C_u[k] * tol
            and a.f_ap[k] >= 0
            and (ap_sum_ok or a.f_ap[k] == 0)
            and 0 <= alpha <= 1
            and power <= snap.P_max * tol
            and energy_ue <= snap.energy_budget[k] * tol + 1e-12
        )
    return ok
