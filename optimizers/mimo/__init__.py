"""Per-frame solvers for the mMIMO-OFDM ISAC base station, judged by ``isac_gym.mimo.evaluate``."""

from optimizers.mimo.dinkelbach import SCHEMES, MIMOSolution, solve_mimo

__all__ = ["SCHEMES", "MIMOSolution", "solve_mimo"]
