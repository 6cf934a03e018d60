"""Section builders of an experiment spec: one function per section (and per ``type`` inside a section), each fed
the section after it passed its own JSON schema (``cevns/experiments/schemas/<section>.json``).

    binning      → :class:`~.binning.Binning`            (axes, edges, ROI mask)
    data         → {dataset name: counts array}          (:mod:`.data`)
    target       → :class:`~.target.Target`               (isotopes × number of nuclei, atoms, form factor, couplings)
    source       → :class:`~.source.SourceBuild`          (a source object with species and spectra; its timing)
    detector     → :class:`~.detector.Detector`           (quenching, smearing, efficiency → response matrices)
    nuisances    → :class:`~.nuisances.NuisanceTable`     (every non-physics parameter: type, constraint, grid)
    signal       → :class:`~.signal.SignalBuild`          (the predicted or released signal sample)
    backgrounds  → {name: background builder}             (:mod:`.backgrounds`)
"""
