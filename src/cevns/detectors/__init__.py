"""Detector response: quenching, light yield, smearing, efficiency, response matrices."""
