"""Batched (physics-parameter) models of the stopped-pion CsI experiments, for scans.

The CEvNS expectation is predicted from physics parameters θ through :func:`cevns.interactions.terms.rate_terms`
(weights per flux-folded kernel on the recoil nodes) and multiplied by the shared SNS flux nuisance; detector
systematics enter as nuisances. Response-changing nuisances use one-at-a-time piecewise-linear morphing between
the ±1σ response matrices (the HistFactory 'code 0' interpolation), so one batch evaluation is a few contractions.
"""
from __future__ import annotations

import numpy as np

from cevns import constants as C

from cevns.inference.batch import BatchedModel
from cevns.inference.likelihood import Parameter
from cevns.interactions.terms import rate_terms

__all__ = ["batch_model_csi2021", "kernel_sets"]


def kernel_sets(exp, names) -> dict[str, dict]:
    """Flux-folded kernels per kernel name for an experiment with ``source``, ``kernels`` and ``components``."""
    from cevns.rates import fold_kernel

    cache = exp._cache.setdefault("kernel_sets", {"sm": exp.kernels.kernels})
    for name in names:
        if name not in cache:
            from cevns.physics_params import KERNELS  # kinematic functions of the BSM layer

            cache[name] = fold_kernel(exp.source, exp.kernels, exp.components, KERNELS[name])
    return cache


def _osc_groups(phys: dict, P: int):
    """Sterile 3+1 points: [(Δm², point indices)] and per-flavour amplitudes 4|U_α4|²|U_s4|² (P,); None if absent."""
    if "dm2_41_eV2" not in phys:
        return None
    from cevns.interactions.oscillation import sterile_amplitude

    dm2 = np.broadcast_to(np.asarray(phys["dm2_41_eV2"], float).ravel(), (P,))
    ue = np.broadcast_to(np.asarray(phys.get("Ue4_sq", 0.0), float).ravel(), (P,))
    um = np.broadcast_to(np.asarray(phys.get("Umu4_sq", 0.0), float).ravel(), (P,))
    amp = {f: np.broadcast_to(sterile_amplitude(f, ue, um), (P,)) for f in ("nue", "numu", "numubar", "nuebar", "nutau", "nutaubar")}
    groups = [(float(u), np.nonzero(dm2 == u)[0]) for u in np.unique(dm2) if u > 0]
    return groups, amp


def _osc_kernels(holder, dm2: float, L_m: float, dL_m: float = 1.0):
    """Flux-folded SM kernel weighted by ⟨sin²(1.267 Δm² L/E)⟩ (cached per Δm²) on the nodes of ``holder``."""
    from cevns.interactions.cevns import kinematic_kernel
    from cevns.interactions.oscillation import mean_sin2
    from cevns.rates import fold_kernel

    cache = holder._cache.setdefault("osc_kernels", {})
    if dm2 not in cache:
        if len(cache) > 256:
            cache.clear()
        cache[dm2] = fold_kernel(holder.source, holder.kernels, holder.components, kinematic_kernel,
                                 flux_weight=lambda f, E: mean_sin2(dm2, L_m, E, dL_m))
    return cache[dm2]


def electron_recoil_setup(exp, kernel_names, T_hi_MeV: float, n_per_panel: int = 16):
    """ν–e scattering in a target: Gauss–Legendre nodes in the electron recoil T_e on (0, T_hi] (geometric panels, for
    the 1/T magnetic term), and flux-folded electron kernels per (kernel, flavour, element) per atom of the material
    (× number of atoms). Kinematics: E_ν ≥ (T + √(T² + 2 m_e T))/2."""
    from cevns.interactions.cevns import e_nu_min
    from cevns.physics_params import KERNELS

    x, w = np.polynomial.legendre.leggauss(n_per_panel)
    edges = T_hi_MeV * np.geomspace(1e-4, 1.0, 9)
    edges = np.r_[0.0, edges]
    T = np.concatenate([lo + 0.5 * (hi - lo) * (x + 1) for lo, hi in zip(edges[:-1], edges[1:])])
    W = np.concatenate([0.5 * (hi - lo) * w for lo, hi in zip(edges[:-1], edges[1:])])
    emin = e_nu_min(T, C.M_ELECTRON)
    atoms: dict[str, float] = {}
    for iso, n in exp.components:
        atoms[iso.symbol] = atoms.get(iso.symbol, 0.0) + n
    kern = {}
    for f in exp.source.flavours:
        sp = exp.source.spectrum(f)
        for k in kernel_names:
            folded = sp.fold(lambda E: KERNELS[k](T[:, None], E, C.M_ELECTRON), emin)
            for el, n in atoms.items():
                kern[(k, f, el)] = exp.source.fluence_per_cm2(f) * n * W * folded
    return T, kern, atoms


def _outer_sum(S, T):
    """Σ_c S[p, c, x] T[p, c, t] → (p, x, t) for the two timing components (faster than einsum here)."""
    return S[:, 0, :, None] * T[:, 0, None, :] + S[:, 1, :, None] * T[:, 1, None, :]


def _bracket(grid, x):
    """Vectorised bracket on a uniform grid (start, step, n): indices i and weights w, clamped."""
    u = np.clip((np.asarray(x, float) - grid.start) / grid.step, 0.0, grid.n - 1 - 1e-12)
    i = np.minimum(u.astype(int), grid.n - 2)
    return i, u - i


def batch_model_csi2021(exp, physics_names=("sin2_theta_w",), kernels=None, electron_recoils=None):
    """Batched model of COHERENT CsI 2021 (:class:`cevns.experiments.csi2021.StoppedPionEventsExperiment`).

    Nuisances (names as in its likelihood): sns_flux_norm and the csi21_* detector/background parameters."""
    from cevns.physics_params import required_kernels

    kernels = kernels or required_kernels(physics_names)
    if electron_recoils is None:  # ν–e scattering matters for electromagnetic and mediator models (CsI has no PSD)
        electron_recoils = bool(set(physics_names) & {"mu_nu_e", "mu_nu_mu", "g_zprime", "g_zprime_BL", "g_scalar",
                                                     "chr_nu_e", "chr_nu_mu"})
    flav = list(exp.flavours)
    comp = exp._comp_idx  # 0 prompt, 1 delayed per flavour
    ff, scheme = exp.form_factor, exp.scheme
    settings = [(0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]
    kern = kernel_sets(exp, kernels)
    # M[s][k][(f, iso)] = R_s × K_k: (PE, nodes)
    mats = []
    resp_cache = {}
    for si, z in enumerate(settings):
        per = {}
        for iso, _ in exp.components:
            R = exp.response_matrix(exp.kernels.nodes[iso.name].T_keV, *z)
            resp_cache[(iso.name, si)] = R
            for k in kernels:
                for f in flav:
                    per[(k, f, iso.name)] = R * kern[k][(f, iso.name)][None, :]
        mats.append(per)
    # ν–e scattering: electron recoils seen without quenching (E_ee = T_e), same gamma smearing and efficiency
    from cevns.physics_params import required_kernels
    from cevns.detectors.smearing import gamma_pe_matrix

    e_kernels = required_kernels(physics_names, target="electron") if electron_recoils else ()
    e_mats = []
    if e_kernels:
        T_hi = 1.3e-3 * exp.pe_edges[-1] / exp.light_yield  # MeV: a little above the largest PE of the window
        Te, ekern, atoms = electron_recoil_setup(exp, e_kernels, T_hi)
        fine = gamma_pe_matrix(Te * 1e3, exp.light_yield, exp.fine_pe_edges, *exp.gamma_coefs)
        centres = 0.5 * (exp.fine_pe_edges[:-1] + exp.fine_pe_edges[1:])
        for z in settings:
            Re = (exp._agg_pe * exp.efficiency(centres, z[2])[None, :]) @ fine
            e_mats.append({key: Re * kv[None, :] for key, kv in ekern.items()})
    P_pe, T_t = exp.npe, exp.nt
    nuis = [Parameter("sns_flux_norm", 1.0, (0.3, 2.0), (1.0, exp.flux_sigma), 0.05)] + exp.nuisance_parameters()
    tg = exp._time_grid  # (n_mean, n_sigma, 2, T)
    brn_tg, nin_tg = exp._brn_time_grid, exp._nin_time_grid
    brn_pe, nin_pe, ss = exp.brn_pe, exp.nin_pe, exp.ss_template.ravel()

    def prepare(phys):
        terms = {}
        P = max([np.size(v) for v in phys.values()] + [1])
        for iso, _ in exp.components:
            T = exp.kernels.nodes[iso.name].T_MeV
            for fi, f in enumerate(flav):
                for k, w in rate_terms(phys, iso, f, T, ff, scheme, kernels).items():
                    terms[(k, f, iso.name)] = (np.broadcast_to(w, (P, len(T))), comp[fi])
        S = np.zeros((len(settings), P, 2, P_pe))
        for s, per in enumerate(mats):
            for key, (w, c) in terms.items():
                S[s, :, c] += w @ per[key].T
        if e_mats:
            from cevns.physics_params import electron_rate_terms

            for el in atoms:
                for fi, f in enumerate(flav):
                    for k, w in electron_rate_terms(phys, el, f, Te, oscillation="ignore").items():
                        w = np.broadcast_to(w, (P, len(Te)))
                        for si, per in enumerate(e_mats):
                            S[si, :, comp[fi]] += w @ per[(k, f, el)].T
        osc = _osc_groups(phys, P)
        if osc is not None:  # ν_α → ν_s removes a fraction ⟨P(α→s)⟩(E) of the SM-kernel events
            groups, amp = osc
            for dm2, pts in groups:
                kosc = _osc_kernels(exp, dm2, exp.spec["source"]["distance_m"])
                for iso, _ in exp.components:
                    for fi, f in enumerate(flav):
                        w, c = terms[("sm", f, iso.name)]
                        wa = w[pts] * amp[f][pts][:, None]
                        if not np.any(wa):
                            continue
                        for si, z in enumerate(settings):
                            R = resp_cache[(iso.name, si)]
                            S[si, pts, c] -= wa @ (R * kosc[(f, iso.name)][None, :]).T
        # one-at-a-time morphing deltas: up and down for each of the three response nuisances
        return S[0], S[1::2] - S[0], S[0] - S[2::2]

    def expected(state, nu):
        S0, up, dn = state
        P = nu.shape[0]
        if S0.shape[0] != P:
            S0, up, dn = (np.broadcast_to(a, a.shape[:-3] + (P,) + a.shape[-2:]) if a.ndim == 4 else
                          np.broadcast_to(a, (P,) + a.shape[1:]) for a in (S0, up, dn))
        z = nu[:, 1:4]  # qf_pc0, qf_pc1, eff
        S = S0 + np.einsum("pj,jpcx->pcx", np.maximum(z, 0), up) + np.einsum("pj,jpcx->pcx", np.minimum(z, 0), dn)
        ia, wa = _bracket(exp.mean_grid, nu[:, 4])
        ib, wb = _bracket(exp.sigma_grid, nu[:, 5])
        Tt = ((1 - wa) * (1 - wb))[:, None, None] * tg[ia, ib] + ((1 - wa) * wb)[:, None, None] * tg[ia, ib + 1] + \
             (wa * (1 - wb))[:, None, None] * tg[ia + 1, ib] + (wa * wb)[:, None, None] * tg[ia + 1, ib + 1]
        mu = nu[:, 0, None, None] * _outer_sum(S, Tt)
        ij, wj = _bracket(exp.brn_shift_grid, nu[:, 7])
        bt = (1 - wj)[:, None] * brn_tg[ij] + wj[:, None] * brn_tg[ij + 1]
        nt = (1 - wa)[:, None] * nin_tg[ia] + wa[:, None] * nin_tg[ia + 1]
        mu = mu + (nu[:, 6, None] * bt)[:, None, :] * brn_pe[None, :, None]
        mu = mu + (nu[:, 8, None] * nt)[:, None, :] * nin_pe[None, :, None]
        return mu.reshape(P, -1) + nu[:, 9, None] * ss[None, :]

    mstep, sstep, bstep = exp.mean_grid.step, exp.sigma_grid.step, exp.brn_shift_grid.step

    def value_and_jacobian(state, nu):
        """μ and ∂μ/∂ν (piecewise-linear interpolations differentiated exactly)."""
        S0, up, dn = state
        P = nu.shape[0]
        if S0.shape[0] != P:
            S0 = np.broadcast_to(S0, (P,) + S0.shape[1:])
            up = np.broadcast_to(up, up.shape[:1] + (P,) + up.shape[2:])
            dn = np.broadcast_to(dn, dn.shape[:1] + (P,) + dn.shape[2:])
        z = nu[:, 1:4]
        dS = np.where((z >= 0).T[:, :, None, None], up, dn)  # (3, P, 2, PE): ∂S/∂z_j
        S = S0 + np.einsum("pj,jpcx->pcx", z, dS)
        ia, wa = _bracket(exp.mean_grid, nu[:, 4])
        ib, wb = _bracket(exp.sigma_grid, nu[:, 5])
        t00, t01, t10, t11 = tg[ia, ib], tg[ia, ib + 1], tg[ia + 1, ib], tg[ia + 1, ib + 1]
        wa3, wb3 = wa[:, None, None], wb[:, None, None]
        Tt = (1 - wa3) * ((1 - wb3) * t00 + wb3 * t01) + wa3 * ((1 - wb3) * t10 + wb3 * t11)
        dT_dm = ((1 - wb3) * (t10 - t00) + wb3 * (t11 - t01)) / mstep
        dT_ds = ((1 - wa3) * (t01 - t00) + wa3 * (t11 - t10)) / sstep
        flux = nu[:, 0, None, None]
        sig = _outer_sum(S, Tt)
        J = np.empty((P, 10, P_pe, T_t), dtype=np.float32)  # single precision: only the Newton direction
        J[:, 0] = sig
        for j in range(3):
            J[:, 1 + j] = flux * _outer_sum(dS[j], Tt)
        ij, wj = _bracket(exp.brn_shift_grid, nu[:, 7])
        bt = (1 - wj)[:, None] * brn_tg[ij] + wj[:, None] * brn_tg[ij + 1]
        dbt = (brn_tg[ij + 1] - brn_tg[ij]) / bstep
        nt = (1 - wa)[:, None] * nin_tg[ia] + wa[:, None] * nin_tg[ia + 1]
        dnt = (nin_tg[ia + 1] - nin_tg[ia]) / mstep
        J[:, 4] = flux * _outer_sum(S, dT_dm) + (nu[:, 8, None] * dnt)[:, None, :] * nin_pe[None, :, None]
        J[:, 5] = flux * _outer_sum(S, dT_ds)
        J[:, 6] = bt[:, None, :] * brn_pe[None, :, None]
        J[:, 7] = (nu[:, 6, None] * dbt)[:, None, :] * brn_pe[None, :, None]
        J[:, 8] = nt[:, None, :] * nin_pe[None, :, None]
        J = J.reshape(P, 10, P_pe * T_t)
        J[:, 9] = ss[None, :]
        mu = (flux[:, :, 0] * sig.reshape(P, -1) + (nu[:, 6, None, None] * bt[:, None, :] * brn_pe[None, :, None]).reshape(P, -1)
              + (nu[:, 8, None, None] * nt[:, None, :] * nin_pe[None, :, None]).reshape(P, -1) + nu[:, 9, None] * ss[None, :])
        return mu, J

    def take_state(state, idx):
        S0, up, dn = state
        if S0.shape[0] == 1:
            return state
        return S0[idx], up[:, idx], dn[:, idx]

    return BatchedModel(exp.name, list(physics_names), nuis, exp.observed.ravel(), expected, prepare,
                        value_and_jacobian, take_state)


def batch_model_released_templates(exp, physics_names=("sin2_theta_w",), kernels=None):
    """Batched model of a released-template experiment (CENNS-10 Analysis A): the released CEvNS template (with its
    shape-variant nuisances) times the ratio r[E, t](θ) = N_engine(θ)/N_engine(SM) per (energy, time) bin of our own
    engine prediction, so new physics changes the rate and the energy/time (flavour) shape but keeps the
    collaboration's SM normalisation and detector model. Nuisances: sns_flux_norm, the signal's other normalisation,
    background normalisations and shape variants (names as in its likelihood)."""
    from cevns.physics_params import required_kernels

    kernels = kernels or required_kernels(physics_names)
    eng = exp.engine
    if eng is None:
        from cevns.errors import ConfigError

        raise ConfigError(f"spec {exp.name}: physics scans need the spec's 'engine' section")
    if not hasattr(eng, "_cache"):
        eng._cache = {}
    kern = kernel_sets(eng, kernels)
    flav = list(eng.flavours)
    tp = {f: eng.time_pdf(f) for f in flav}
    mats = {}
    for iso, _ in eng.components:
        R = eng.response(eng.kernels.nodes[iso.name].T_keV)
        for k in kernels:
            for f in flav:
                mats[(k, f, iso.name)] = R * kern[k][(f, iso.name)][None, :]
    ie, it = exp.engine_axes
    shape = tuple(exp.shape)

    resp = {iso.name: eng.response(eng.kernels.nodes[iso.name].T_keV) for iso, _ in eng.components}

    def engine_et(phys):
        P = max([np.size(v) for v in phys.values()] + [1])
        out = np.zeros((P, len(eng.energy_edges) - 1, len(eng.time_edges) - 1))
        osc = _osc_groups(phys, P)
        for iso, _ in eng.components:
            T = eng.kernels.nodes[iso.name].T_MeV
            for f in flav:
                for k, w in rate_terms(phys, iso, f, T, eng.form_factor, eng.scheme, kernels).items():
                    w = np.broadcast_to(w, (P, len(T)))
                    pe = w @ mats[(k, f, iso.name)].T  # (P, nE)
                    if k == "sm" and osc is not None:
                        groups, amp = osc
                        for dm2, pts in groups:
                            kosc = _osc_kernels(eng, dm2, eng.source.distance_m)
                            pe[pts] -= (w[pts] * amp[f][pts][:, None]) @ (resp[iso.name] * kosc[(f, iso.name)][None, :]).T
                    out += pe[:, :, None] * tp[f][None, None, :]
        return out  # (P, nE, nT)

    sm = engine_et({})[0]
    sig_params = exp.signal_parameters("xsec_scale")[1:]  # flux, other normalisation
    nuis = list(sig_params) + exp.nuisance_parameters()
    ns = len(sig_params)
    packed = exp._packed()
    bg_pos = {n: ns + i for i, n in enumerate(exp.backgrounds)}
    observed = exp.observed.ravel()

    def to_full(r):  # (P, nE, nT) -> (P, nbins) broadcast over the other axes
        P = r.shape[0]
        full_shape = [1] * len(shape)
        full_shape[ie], full_shape[it] = shape[ie], shape[it]
        rr = r if ie < it else np.swapaxes(r, 1, 2)
        rr = rr.reshape((P,) + tuple(full_shape))
        return np.broadcast_to(rr, (P,) + shape).reshape(P, -1)

    def prepare(phys):
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(sm[None] > 0, engine_et(phys) / np.where(sm > 0, sm, 1.0)[None], 1.0)
        return to_full(r)

    def expected(ratio, nu):
        P = nu.shape[0]
        if ratio.shape[0] != P:
            ratio = np.broadcast_to(ratio, (P, ratio.shape[1]))
        mu = np.zeros((P, observed.size))
        for n, nom, dp, dm, idx in packed:
            t = nom[None, :]
            if len(idx):
                th = nu[:, idx + ns]  # shape-variant pulls (idx counts from the start of the nuisance block)
                t = nom[None, :] + np.maximum(th, 0.0) @ dp + np.minimum(th, 0.0) @ dm
            t = np.maximum(t, 0.0)
            if n == exp.signal:
                mu += (nu[:, 0] * nu[:, 1])[:, None] * t * ratio
            else:
                mu += nu[:, bg_pos[n], None] * t
        return mu

    m_all = len(nuis)

    def value_and_jacobian(ratio, nu):
        """μ and ∂μ/∂ν (P, m, bins): every nuisance enters linearly or piecewise linearly (template morphing)."""
        P = nu.shape[0]
        if ratio.shape[0] != P:
            ratio = np.broadcast_to(ratio, (P, ratio.shape[1]))
        mu = np.zeros((P, observed.size))
        J = np.zeros((P, m_all, observed.size), dtype=np.float32)  # single precision: only the Newton direction
        for n, nom, dp, dm, idx in packed:
            t = nom[None, :]
            if len(idx):
                th = nu[:, idx + ns]
                t = nom[None, :] + np.maximum(th, 0.0) @ dp + np.minimum(th, 0.0) @ dm
            pos = t > 0
            t = np.where(pos, t, 0.0)
            if n == exp.signal:
                base = t * ratio
                scale = (nu[:, 0] * nu[:, 1])[:, None]
                mu += scale * base
                J[:, 0] = nu[:, 1, None] * base
                J[:, 1] = nu[:, 0, None] * base
                fac = scale * ratio * pos
            else:
                scale = nu[:, bg_pos[n], None]
                mu += scale * t
                J[:, bg_pos[n]] = t
                fac = scale * pos
            for j, gj in enumerate(idx):
                up = nu[:, gj + ns] >= 0
                J[:, gj + ns] = fac * np.where(up[:, None], dp[j][None, :], dm[j][None, :])
        return mu, J

    return BatchedModel(exp.name, list(physics_names), nuis, observed, expected, prepare, value_and_jacobian,
                        lambda st, idx: st if st.shape[0] == 1 else st[idx])
