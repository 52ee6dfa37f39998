"""Policies that map environment observations to actions (SB3 ``predict`` shape)."""
