"""isac-gym: verified optimizers and Gymnasium environments for ISAC / ISCC research.

Importing the package is light: physics only; environments are registered by
entry-point strings (see ``isac_gym.envs``).
"""

from isac_gym.envs import register_envs
from isac_gym.iscc import Allocation, Evaluation, ISCCConfig, Snapshot, evaluate, sample_snapshot

register_envs()

__version__ = "0.1.0"
__all__ = ["Allocation", "Evaluation", "ISCCConfig", "Snapshot", "evaluate", "sample_snapshot"]
