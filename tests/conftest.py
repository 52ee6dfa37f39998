import numpy as np
import pytest

from isac_gym.iscc import ISCCConfig, Snapshot, sample_snapshot

#: A tiny MIMOISAC-v0 cell (4 x 4 UPA, K = 2, N = 2, loose CRB ceilings, 3 Dinkelbach
#: steps) that keeps the Dinkelbach oracle at a few frames per second in tests.
MIMO_TINY_CELL = dict(
    N_x=4,
    N_y=4,
    K=2,
    N=2,
    L=16,
    crb_max_theta=1.0,
    crb_max_phi=1.0,
    cell_radius=60.0,
    min_distance=20.0,
    rate_demand=(1.0, 2.0),
    solver_options=dict(max_iterations=3),
    horizon=6,
)


#: The 4 x 4 mMIMO cell of the solver tests (K = 3, N = 4, -25 dB CRB ceilings, loose
#: enough for 16 antennas), with the 150 m and 5.6 mW its expected values were measured in
#: (the paper preset moved to 100 m and 25.6 dBm since).
MIMO_SMALL_CELL = dict(
    N_x=4, N_y=4, K=3, N=4, crb_max_theta=3e-3, crb_max_phi=3e-3, cell_radius=150.0, P_c=5.6e-3
)


def cvxpy_solve_mimo(*args, method="cvxpy", **kwargs):
    """``solve_mimo`` with the CVXPY reference loop (Algorithm 1) unless told otherwise:
    the Dinkelbach tests check that loop, and ``fast`` is the default."""
    from optimizers.mimo import dinkelbach

    return dinkelbach.solve_mimo(*args, method=method, **kwargs)


@pytest.fixture
def paper_config() -> ISCCConfig:
    return ISCCConfig.paper()


@pytest.fixture
def paper_snapshot(paper_config) -> Snapshot:
    return sample_snapshot(paper_config, np.random.default_rng(0))


def tiny_snapshot(H, H_sense, **overrides) -> Snapshot:
    """A hand-made snapshot with explicit channels (K = H.shape[0])."""
    H = np.asarray(H, dtype=complex)
    H_sense = np.asarray(H_sense, dtype=complex)
    K, M_a, M_ut = H.shape
    M_ur = H_sense.shape[1]
    fields = dict(
        B=1e6,
        noise=0.5,
        P_max=4.0,
        C_ap=10.0,
        xi_ap=0.1,
        gamma_s=1.0,
        Q=np.full(K, 2.0),
        tau=np.full(K, 10.0),
        C_u=np.full(K, 5.0),
        xi_u=np.full(K, 0.2),
        varpi=np.full(K, 3.0),
        energy_budget=np.full(K, np.inf),
        ue_position=np.zeros((K, 2)),
        ue_heading=np.zeros(K),
        ap_position=np.zeros(2),
        target_position=np.ones(2),
        distance_ap=np.ones(K),
        distance_target=np.ones(K),
        H=H,
        H_sense=H_sense,
        path_gain=np.ones(K),
        rho=np.ones(K, complex),
        sense_rx=np.ones((K, M_ur), complex),
        sense_tx=np.ones((K, M_ut), complex),
        ap_los=np.ones((K, M_a), complex),
        ue_los=np.ones((K, M_ut), complex),
    )
    fields.update(overrides)
    return Snapshot(**fields)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray (2 CPUs, no dashboard) for the whole test session; skipped without Ray."""
    ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install -e ".[ray]"')
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    if started:
        ray.shutdown()
