"""Stopped-pion CEvNS experiments observed in (PE, arrival time): COHERENT CsI[Na] and the like.

Built from a declarative spec (see ``specs/*.json`` and ``schema.json``): source × target × PE response give the
CEvNS template; backgrounds are release templates (beam-related neutrons) and the steady-state background measured
in the anti-coincidence window. Shape nuisances that change the response (quenching) are handled by precomputing
the CEvNS template on a grid of nuisance values and interpolating linearly per bin, so one likelihood evaluation
is a few array operations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cevns.detectors.efficiency import coherent2017_efficiency
from cevns.detectors.quenching import ConstantQuenching
from cevns.detectors.response import PEResponse
from cevns.errors import ConfigError
from cevns.experiments.base import SpecExperiment
from cevns.experiments.releases import read_grid3, read_table
from cevns.inference.likelihood import BinnedPoissonLikelihood, Parameter
from cevns.interactions.cevns import nucleon_couplings, nucleon_form_factors
from cevns.rates import FluxKernels, flux_kernels
from cevns.sources.stopped_pion import StoppedPionSource, pot_from_beam_energy
from cevns.targets.materials import material

__all__ = ["StoppedPionPETimeExperiment", "edges_from_spec"]


def edges_from_spec(b) -> np.ndarray:
    """Bin edges from a list or {'start','stop','step'}."""
    if isinstance(b, dict):
        n = int(round((b["stop"] - b["start"]) / b["step"]))
        return b["start"] + b["step"] * np.arange(n + 1)
    return np.asarray(b, dtype=float)


def _centres(edges):
    return 0.5 * (edges[:-1] + edges[1:])


class _WithQuenching:
    """A PE response with its quenching model swapped (the cached aggregation/efficiency are reused)."""

    def __init__(self, resp: PEResponse, quenching):
        self.resp, self.quenching = resp, quenching

    def matrix(self, T_keV):
        return self.resp.matrix(T_keV, self.quenching)


@dataclass
class StoppedPionPETimeExperiment(SpecExperiment):
    """A (PE × time) CEvNS experiment at a stopped-pion source. Construct with :meth:`from_spec`."""

    spec: dict
    data_root: str | None = None
    qf_grid_sigmas: tuple[float, ...] = (-3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3)
    _cache: dict = field(default_factory=dict, repr=False)

    def _setup(self) -> None:
        sp = self.spec
        self.pe_edges = edges_from_spec(sp["binning"]["pe_edges"])
        self.t_edges = edges_from_spec(sp["binning"]["time_edges_us"])
        npe, nt = len(self.pe_edges) - 1, len(self.t_edges) - 1
        pe_c, t_c = _centres(self.pe_edges), _centres(self.t_edges)
        roi = sp["roi"]
        self.mask = ((pe_c >= roi["pe"][0]) & (pe_c < roi["pe"][1]))[:, None] & \
                    ((t_c >= roi["time_us"][0]) & (t_c < roi["time_us"][1]))[None, :]
        # source
        src = sp["source"]
        pot = src.get("pot") or pot_from_beam_energy(src["beam_energy_GWh"], src["proton_kinetic_energy_GeV"])
        timing = src["timing"]
        table = None
        if timing["model"] == "tabulated":
            table = {}
            for comp in ("prompt", "delayed"):
                arr = read_table(self._file(timing[comp]), ncols=2, rows=nt)
                if not np.allclose(arr[:, 0], t_c):
                    raise ConfigError(f"{timing[comp]}: time bin centres differ from the spec binning")
                table[comp] = (self.t_edges, arr[:, 1])
            self.source = StoppedPionSource(pot, src["nu_per_flavour_per_pot"], src["distance_m"], timing_table=table)
        else:
            self.source = StoppedPionSource(pot, src["nu_per_flavour_per_pot"], src["distance_m"],
                                            pulse_mean_us=timing["mean_us"], pulse_sigma_us=timing["sigma_us"])
        self.pot = pot
        # target
        tgt = sp["target"]
        mat = material(tgt["material"])
        self.components = [(iso, n * tgt["mass_kg"]) for iso, n in mat.components]
        self.kernels: FluxKernels = flux_kernels(self.source, self.components)
        self.time_pdfs = {f: self.source.time_pdf(f, self.t_edges) for f in self.source.flavours}
        # detector
        det = sp["detector"]
        self.light_yield = det["light_yield_pe_per_keVee"]
        eff = det["efficiency"]
        if eff["model"] != "coherent2017":
            raise ConfigError(f"efficiency model {eff['model']!r} not supported here; allowed: coherent2017")
        self.eff_params = {"a": eff["a"], "k": eff["k"], "x0": eff["x0"]}
        # data
        _, _, self.observed = read_grid3(self._file(sp["data"]["observed"]), npe, nt)
        _, _, self.ac = read_grid3(self._file(sp["data"]["steady_state"]), npe, nt)
        self._setup_backgrounds()
        self._build_templates()

    def _setup_backgrounds(self) -> None:
        sp = self.spec
        nt = len(self.t_edges) - 1
        brn = sp["backgrounds"]["brn"]
        e_arr = read_table(self._file(brn["energy_file"]), ncols=2, min_rows=int(self.pe_edges[-1]))
        pe1 = e_arr[:, 0]
        fine_edges = np.arange(0, self.pe_edges[-1] + 1)
        sel = pe1 < self.pe_edges[-1]
        if not np.allclose(pe1[sel], _centres(fine_edges)):
            raise ConfigError(f"{brn['energy_file']}: expected 1-PE bin centres 0.5, 1.5, ...")
        counts = e_arr[sel, 1] * (sp["source"]["beam_energy_GWh"] if brn.get("energy_per_GWh") else 1.0)
        if brn.get("apply_efficiency"):
            counts = counts * coherent2017_efficiency(pe1[sel], **self.eff_params)
        idx = np.searchsorted(fine_edges, self.pe_edges)
        cs = np.concatenate([[0.0], np.cumsum(counts)])
        brn_pe = cs[idx[1:]] - cs[idx[:-1]]
        t_arr = read_table(self._file(brn["time_file"]), ncols=2, rows=nt)
        self.brn_template = np.outer(brn_pe, t_arr[:, 1])
        # steady state: the anti-coincidence sample factorised into its PE and time marginals (the AC time
        # distribution is not flat: the early-time excess common to both windows comes from the event selection)
        ss = sp["backgrounds"]["steady_state"]
        n_ac = self.ac.sum()
        if ss.get("time_shape", "data") == "flat":
            self.ss_template = np.outer(self.ac.sum(axis=1), np.full(nt, 1.0 / nt))
        else:
            self.ss_template = np.outer(self.ac.sum(axis=1), self.ac.sum(axis=0)) / n_ac
        self.n_ac_roi = float(self.ac[self.mask].sum())

    # ---- CEvNS templates -----------------------------------------------------------------------------------
    def response(self, qf: float) -> PEResponse:
        key = tuple(sorted(self.eff_params.items()))
        if self._cache.get("response_key") != key:
            self._cache["response"] = PEResponse(ConstantQuenching(self.spec["detector"]["quenching"]["qf"]),
                                                 self.light_yield, self.pe_edges, "poisson",
                                                 lambda x: coherent2017_efficiency(x, **self.eff_params))
            self._cache["response_key"] = key
        return _WithQuenching(self._cache["response"], ConstantQuenching(qf))

    def cevns_template(self, qf: float | None = None, by_flavour: bool = False, **qw_kwargs):
        """Expected CEvNS counts [PE bin, time bin] (or a dict per flavour) for a quenching factor and weak-charge
        options (sin2_theta_w, form_factor_model, r_n_fm, scheme)."""
        tgt = self.spec["target"]
        qw_kwargs.setdefault("form_factor_model", tgt.get("form_factor", "helm"))
        qw_kwargs.setdefault("scheme", tgt.get("coupling_scheme", "pdg"))
        qf = self.spec["detector"]["quenching"]["qf"] if qf is None else qf
        resp = self.response(qf)
        ff_kw = {k: qw_kwargs.pop(k) for k in ("form_factor_model", "r_p_fm", "r_n_fm") if k in qw_kwargs}
        out = {}
        for iso, _ in self.components:
            nd = self.kernels.nodes[iso.name]
            R = resp.matrix(nd.T_keV)
            Fp, Fn = nucleon_form_factors(nd.T_MeV, iso, **ff_kw)
            for f in self.source.flavours:
                gp, gn = nucleon_couplings(f, **qw_kwargs)
                qw = iso.Z * gp * Fp + iso.N * gn * Fn
                spec_pe = R @ self.kernels.events(f, iso.name, qw * qw)
                out[f] = out.get(f, 0.0) + np.outer(spec_pe, self.time_pdfs[f])
        return out if by_flavour else sum(out.values())

    def _build_templates(self) -> None:
        q = self.spec["detector"]["quenching"]
        self.qf0, self.qf_sigma = q["qf"], q.get("qf_sigma", 0.0)
        self.qf_grid = self.qf0 + self.qf_sigma * np.asarray(self.qf_grid_sigmas)
        self.cevns_grid = np.stack([self.cevns_template(qf) for qf in self.qf_grid])  # [nqf, npe, nt]
        self.cevns_sm = self.cevns_grid[list(self.qf_grid_sigmas).index(0)]

    def cevns_at_qf(self, qf: float) -> np.ndarray:
        """CEvNS template linearly interpolated in the quenching factor (clamped to the precomputed grid)."""
        g = self.qf_grid
        x = min(max(qf, g[0]), g[-1])
        i = int(np.clip(np.searchsorted(g, x) - 1, 0, len(g) - 2))
        w = (x - g[i]) / (g[i + 1] - g[i])
        return (1 - w) * self.cevns_grid[i] + w * self.cevns_grid[i + 1]

    # ---- predictions ---------------------------------------------------------------------------------------
    def sm_prediction(self, **qw_kwargs) -> float:
        """SM CEvNS counts in the ROI (nominal inputs)."""
        t = self.cevns_sm if not qw_kwargs else self.cevns_template(**qw_kwargs)
        return float(t[self.mask].sum())

    def sm_prediction_uncertainty(self) -> dict[str, float]:
        """Relative uncertainties of the SM prediction: quenching, flux, efficiency, form factor (quadrature sum)."""
        n0 = self.sm_prediction()
        out = {}
        up = self.cevns_template(self.qf0 + self.qf_sigma)[self.mask].sum()
        dn = self.cevns_template(self.qf0 - self.qf_sigma)[self.mask].sum()
        out["quenching"] = 0.5 * abs(up - dn) / n0
        out["flux"] = self.spec["source"].get("nu_per_flavour_per_pot_sigma", 0.0) / self.spec["source"]["nu_per_flavour_per_pot"]
        eff = self.spec["detector"]["efficiency"]
        saved = dict(self.eff_params)
        effvar = 0.0
        for key in ("a", "k", "x0"):
            lo_e, hi_e = eff.get(f"{key}_err", [0.0, 0.0])
            vals = []
            for v in (saved[key] - lo_e, saved[key] + hi_e):
                self.eff_params = dict(saved, **{key: v})
                vals.append(self.cevns_template(self.qf0)[self.mask].sum())
            effvar += (0.5 * abs(vals[1] - vals[0]) / n0) ** 2
        self.eff_params = saved
        out["efficiency"] = math.sqrt(effvar)
        out["form_factor"] = self.spec.get("systematics", {}).get("form_factor_sigma", 0.0)
        out["total"] = math.sqrt(sum(v * v for v in out.values()))
        return out

    # ---- likelihood ----------------------------------------------------------------------------------------
    def parameters(self) -> list[Parameter]:
        brn_sigma = self.spec["backgrounds"]["brn"]["norm_sigma"]
        ss_sigma = 1.0 / math.sqrt(max(self.n_ac_roi, 1.0))
        return [
            Parameter("n_cevns", self.sm_prediction(), (0.0, 20.0 * self.sm_prediction()), None, 10.0, "poi",
                      "CEvNS counts in the ROI (free)"),
            Parameter("brn_norm", 1.0, (0.0, 5.0), (1.0, brn_sigma), 0.1, "nuisance", "beam-related neutrons"),
            Parameter("ss_norm", 1.0, (0.0, 3.0), (1.0, ss_sigma), 0.02, "nuisance", "steady-state background"),
            Parameter("qf", self.qf0, (self.qf_grid[0], self.qf_grid[-1]), (self.qf0, self.qf_sigma), 0.005,
                      "nuisance", "CsI[Na] quenching factor"),
        ]

    def _cevns_shape(self, qf: float) -> np.ndarray:
        """CEvNS template normalised to 1 in the ROI, interpolated linearly in qf between normalised grid shapes."""
        g = self.qf_grid
        x = min(max(qf, g[0]), g[-1])
        i = min(max(int(np.searchsorted(g, x)) - 1, 0), len(g) - 2)
        w = (x - g[i]) / (g[i + 1] - g[i])
        norm = self.cevns_grid[:, self.mask].sum(axis=1)
        return (1 - w) * self.cevns_grid[i] / norm[i] + w * self.cevns_grid[i + 1] / norm[i + 1]

    def expected(self, x) -> np.ndarray:
        """μ[PE, t] for x = (n_cevns, brn_norm, ss_norm, qf): the CEvNS shape at this quenching factor normalised
        to n_cevns events in the ROI, plus the scaled background templates."""
        return x[0] * self._cevns_shape(x[3]) + x[1] * self.brn_template + x[2] * self.ss_template

    def components_at(self, x) -> dict[str, np.ndarray]:
        return {"CEvNS": x[0] * self._cevns_shape(x[3]), "BRN": x[1] * self.brn_template,
                "steady state": x[2] * self.ss_template}

    def _prepare_roi(self) -> None:
        m = self.mask
        g = self.cevns_grid[:, m]
        self._roi_shapes = g / g.sum(axis=1, keepdims=True)
        self._roi_brn = self.brn_template[m]
        self._roi_ss = self.ss_template[m]

    def expected_roi(self, x) -> np.ndarray:
        """μ over the ROI bins only (flattened), same model as :meth:`expected`: the likelihood's hot path."""
        g = self.qf_grid
        q = min(max(x[3], g[0]), g[-1])
        i = min(max(int(np.searchsorted(g, q)) - 1, 0), len(g) - 2)
        w = (q - g[i]) / (g[i + 1] - g[i])
        shape = (1 - w) * self._roi_shapes[i] + w * self._roi_shapes[i + 1]
        return x[0] * shape + x[1] * self._roi_brn + x[2] * self._roi_ss

    def likelihood(self) -> BinnedPoissonLikelihood:
        """Binned Poisson likelihood over the ROI, parameters (n_cevns, brn_norm, ss_norm, qf)."""
        self._prepare_roi()
        return BinnedPoissonLikelihood(self.name, self.parameters(), self.expected_roi, self.observed[self.mask])


def batch_model_csi2017(exp: StoppedPionPETimeExperiment, physics_names=("sin2_theta_w",), qw2_fn=None):
    """Batched model of a stopped-pion PE × time experiment with predicted (not free) CEvNS counts:
    μ = flux_norm · S(θ, qf) + brn_norm · B + ss_norm · SS. Nuisances: sns_flux_norm, brn_norm, ss_norm, qf."""
    from cevns.inference.batch import BatchedModel

    tgt = exp.spec["target"]
    ff, scheme = tgt.get("form_factor", "helm"), tgt.get("coupling_scheme", "pdg")
    if qw2_fn is None:
        from cevns.interactions.terms import rate_terms

        def qw2_fn(phys, iso, f, T):
            terms = rate_terms(phys, iso, f, T, ff, scheme)
            if set(terms) != {"sm"}:
                raise ConfigError(f"{exp.name}: only weak-charge models (kernel 'sm') are supported here, got {sorted(terms)}")
            return terms["sm"]
    m = exp.mask
    # M[k][(f, iso)]: (ROI bins, nodes) for every quenching grid value k: signal = Σ M @ qw2
    mats = []
    for qf in exp.qf_grid:
        resp = exp.response(qf)
        per = {}
        for iso, _ in exp.components:
            nd = exp.kernels.nodes[iso.name]
            R = resp.matrix(nd.T_keV)
            for f in exp.source.flavours:
                full = (R * exp.kernels.kernels[(f, iso.name)][None, :])  # (npe, nodes)
                per[(f, iso.name)] = np.einsum("an,t->atn", full, exp.time_pdfs[f])[m]  # (roi bins, nodes)
        mats.append(per)
    brn, ss = exp.brn_template[m], exp.ss_template[m]
    g = exp.qf_grid
    flux_sigma = exp.spec["source"].get("nu_per_flavour_per_pot_sigma", 0.0) / exp.spec["source"]["nu_per_flavour_per_pot"]
    nuis = [Parameter("sns_flux_norm", 1.0, (0.0, 3.0), (1.0, flux_sigma), 0.05),
            Parameter("brn_norm", 1.0, (0.0, 5.0), (1.0, exp.spec["backgrounds"]["brn"]["norm_sigma"]), 0.1),
            Parameter("ss_norm", 1.0, (0.0, 3.0), (1.0, 1.0 / math.sqrt(max(exp.n_ac_roi, 1.0))), 0.02),
            Parameter("qf", exp.qf0, (g[0], g[-1]), (exp.qf0, exp.qf_sigma), 0.005)]

    def prepare(phys: dict) -> np.ndarray:
        """Signal templates for every quenching grid value: (nqf, P, bins)."""
        qw2 = {(f, iso.name): np.atleast_2d(qw2_fn(phys, iso, f, exp.kernels.nodes[iso.name].T_MeV))
               for iso, _ in exp.components for f in exp.source.flavours}
        return np.stack([sum(q @ mk[key].T for key, q in qw2.items()) for mk in mats])

    def expected(sig_k: np.ndarray, nu: np.ndarray) -> np.ndarray:
        P = nu.shape[0]
        if sig_k.shape[1] != P:
            sig_k = np.broadcast_to(sig_k, (sig_k.shape[0], P, sig_k.shape[2]))
        q = np.clip(nu[:, 3], g[0], g[-1])
        i = np.clip(np.searchsorted(g, q) - 1, 0, len(g) - 2)
        w = (q - g[i]) / (g[i + 1] - g[i])
        sig = (1 - w)[:, None] * sig_k[i, np.arange(P)] + w[:, None] * sig_k[i + 1, np.arange(P)]
        return nu[:, :1] * sig + nu[:, 1:2] * brn[None, :] + nu[:, 2:3] * ss[None, :]

    return BatchedModel(exp.name, list(physics_names), nuis, exp.observed[m], expected, prepare,
                        take_state=lambda st, idx: st if st.shape[1] == 1 else st[:, idx])
