"""Neutrino sources: energy spectra per flavour, normalisation and arrival-time distributions."""
from cevns.sources.spectrum import Spectrum
from cevns.sources.stopped_pion import StoppedPionSource, michel_nue_pdf, michel_numubar_pdf, pot_from_beam_energy

__all__ = ["Spectrum", "StoppedPionSource", "michel_nue_pdf", "michel_numubar_pdf", "pot_from_beam_energy"]
