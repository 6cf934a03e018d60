"""Interactions: differential cross sections dσ/dT on (T, E_ν) grids."""
