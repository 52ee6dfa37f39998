"""ISCC system of Dong et al. (2026): configuration, scenario sampling, true model."""

from isac_gym.iscc.arrays import ula_steering, upa_steering
from isac_gym.iscc.beams import beam_directions, comm_combiners, sensing_combiners
from isac_gym.iscc.config import PER_UE_FIELDS, ISCCConfig
from isac_gym.iscc.model import (
    CONSTRAINTS,
    FEASIBILITY_RTOL,
    Allocation,
    Evaluation,
    as_beta,
    evaluate,
    evaluate_batch,
    sinr_terms,
)
from isac_gym.iscc.scenario import Snapshot, sample_snapshot, with_channel_error

__all__ = [
    "CONSTRAINTS",
    "FEASIBILITY_RTOL",
    "PER_UE_FIELDS",
    "Allocation",
    "Evaluation",
    "ISCCConfig",
    "Snapshot",
    "as_beta",
    "beam_directions",
    "comm_combiners",
    "evaluate",
    "evaluate_batch",
    "sample_snapshot",
    "sensing_combiners",
    "sinr_terms",
    "ula_steering",
    "upa_steering",
    "with_channel_error",
]
