"""Session fixtures shared by the physics tests: each registered experiment built once, and the COHERENT
reproductions run once (the combined reproduction runs the CsI 2021 and argon ones and keeps their reports)."""
import pytest


@pytest.fixture(scope="session")
def experiments():
    from cevns.experiments import load_experiment

    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = load_experiment(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def combined_reproduction(experiments):
    from cevns.reproductions.coherent_combined import reproduce

    return reproduce(experiments=(experiments("coherent-csi-2021"), experiments("coherent-ar-2020")))
