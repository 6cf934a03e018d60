"""The forward model: samples and modifiers (:mod:`.samples`), the one interpolation code (:mod:`.interpolation`),
predicted signals (:mod:`.signal`) and the per-experiment model μ(θ, ν) (:mod:`.forward`)."""
from cevns.model.forward import ForwardModel
from cevns.model.interpolation import VariantGrid
from cevns.model.samples import FactorisedSample, GridModifier, TemplateSample

__all__ = ["ForwardModel", "VariantGrid", "FactorisedSample", "GridModifier", "TemplateSample"]
