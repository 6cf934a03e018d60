"""Inference: binned Poisson likelihoods, fits, profiles, confidence sets, scans, limits, combinations."""
from cevns.inference.fit import FitResult, fit, profile_scan, significance_from_delta_chi2
from cevns.inference.intervals import ConfidenceSet, confidence_set, interval_from_profile
from cevns.inference.likelihood import (BinnedPoissonLikelihood, CombinedLikelihood, Likelihood, ModelLikelihood,
                                        Parameter, poisson_chi2)

__all__ = ["FitResult", "fit", "profile_scan", "significance_from_delta_chi2", "ConfidenceSet", "confidence_set",
           "interval_from_profile", "BinnedPoissonLikelihood", "CombinedLikelihood", "Likelihood", "ModelLikelihood",
           "Parameter", "poisson_chi2"]
