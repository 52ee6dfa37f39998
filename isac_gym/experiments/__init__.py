"""Experiments over the per-slot optimizers: reproduction of the ISCC paper (Sec. VI)."""
