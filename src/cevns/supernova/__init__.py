"""Supernova neutrinos in every detector: rates per channel (SNOwGLoBES tables for lead, water and scintillator;
CEvNS on the package's rate engine), light curves, the HALO-1kT + Super-K + JUNO flux fit and SNEWS p-values.
See docs/supernova.md."""
