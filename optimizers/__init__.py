"""Per-slot solvers for the ISCC problem (P1): judged by ``isac_gym.iscc.evaluate``."""
