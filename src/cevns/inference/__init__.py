"""Inference: binned Poisson likelihoods, fits, profiles, scans, limits, combinations."""
from cevns.inference.fit import FitResult, fit, interval_from_profile, profile_scan, significance_from_delta_chi2
from cevns.inference.likelihood import BinnedPoissonLikelihood, CombinedLikelihood, Likelihood, Parameter, poisson_chi2

__all__ = ["FitResult", "fit", "profile_scan", "significance_from_delta_chi2", "interval_from_profile",
           "BinnedPoissonLikelihood", "CombinedLikelihood", "Likelihood", "Parameter", "poisson_chi2"]
