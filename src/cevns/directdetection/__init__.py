"""Direct detection of halo dark matter and its neutrino backgrounds: recoil spectra (elastic, Migdal,
Bremsstrahlung), the neutrino fog (discovery limits, the fog index), counting-experiment limits, and xenon detector
ingredients (energy resolution, the ²²²Rn → ²¹⁴Pb background). See docs/direct_detection.md."""
from cevns.directdetection.spectra import (DD_PROCESSES, brems_spectrum, dd_rate, elastic_spectrum, migdal_spectrum,
                                           target_components)

__all__ = ["DD_PROCESSES", "brems_spectrum", "dd_rate", "elastic_spectrum", "migdal_spectrum", "target_components"]
