"""mMIMO-OFDM ISAC base station of Nguyen et al. (2025): configuration, scenario, true model.

The paper's copy lost its formulas; the model follows the reconstructed specification
``docs/mimo_model.md`` (equation numbers are the paper's).
"""

from isac_gym.mimo.config import OMEGA_HOR, OMEGA_LOR, MIMOISACConfig
from isac_gym.mimo.model import (
    CONSTRAINTS,
    FEASIBILITY_RTOL,
    MIMOAllocation,
    MIMOEvaluation,
    StreamConstants,
    crb_from_fim,
    crb_theorem1,
    equal_split,
    evaluate,
    fisher_information,
    sinr_terms,
    stream_constants,
    streams,
    transmit_power_closed_form,
)
from isac_gym.mimo.scenario import MIMOSnapshot, sample_snapshot, upa_steering

__all__ = [
    "CONSTRAINTS",
    "FEASIBILITY_RTOL",
    "OMEGA_HOR",
    "OMEGA_LOR",
    "MIMOAllocation",
    "MIMOEvaluation",
    "MIMOISACConfig",
    "MIMOSnapshot",
    "StreamConstants",
    "crb_from_fim",
    "crb_theorem1",
    "equal_split",
    "evaluate",
    "fisher_information",
    "sample_snapshot",
    "sinr_terms",
    "stream_constants",
    "streams",
    "transmit_power_closed_form",
    "upa_steering",
]
