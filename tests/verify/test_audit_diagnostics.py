"""The diagonal-concentration and Fisher-agreement audits compute what they claim to (machinery,
relations on hand-made contexts, the factor formulas against torchimpl.curvature, the figures'
axes); no test asserts a claim's verdict.

Closed forms used below: Diag(d) is strictly diagonally dominant with all its energy on the
diagonal and its eigenvalues on the disc centres; the dense control c(I + 11ᵀ) (n > 2) has no
dominant row and diagonal energy fraction 4n / (4n + n(n − 1)) = 4/(n + 3).
"""

import numpy as np
import pytest
import torch

import reference
import torchimpl
from torchimpl import curvature as tc
from verify import audits
from verify.audits import thesis_diagnostics as td
from verify.audits.framework import Evaluation


def relation(claim, start):
    matches = [r for r in claim.relations if r.name.startswith(start)]
    assert len(matches) == 1, start
    return matches[0].check


def context(*mats):
    return {"label": "hand-made", "n": mats[0].shape[0],
            "checkpoints": tuple(td.diagnostics(M) for M in mats)}


def dense(n, c=1.0):
    return 0.5 * c * (np.eye(n) + np.ones((n, n)))


def test_both_ids_are_registered_with_thresholds_and_notes():
    assert set(td.CLAIMS) == {"claim:T.diag_concentration", "claim:T.mae_fisher"}
    for key, claim in td.CLAIMS.items():
        assert audits.get(key) is claim
        assert claim.thresholds and claim.note and claim.nature == "qualitative"


def test_diagonal_matrix_satisfies_every_gershgorin_reading():
    d = np.array([5.0, 4.0, 3.0, 2.0, 1.5])
    ctx = context(np.diag(d), np.diag(d), np.diag(d))
    claim = td.diag_concentration
    for start in ("Gershgorin", "eigenvalues cluster", "diagonal dominance", "bulk",
                  "Kaiser eigenvalues", "stable"):
        ev = relation(claim, start)(ctx)
        assert ev.ok is True, (start, ev)
    # the same E moves the diagonal matrix's eigenvalues less than the dense control's
    assert relation(claim, "... displaced less")(ctx).ok is True


def test_dense_control_fails_dominance_and_bulk_with_its_closed_form():
    n = 7
    ctx = context(*(dense(n, 2.0),) * 3)
    claim = td.diag_concentration
    dominance = relation(claim, "diagonal dominance")(ctx)
    assert dominance.ok is False and dominance.discrepancy == -1.0
    bulk = relation(claim, "bulk")(ctx)
    assert bulk.ok is False
    assert bulk.discrepancy == pytest.approx(4.0 / (n + 3) - td.BULK, rel=1e-12)
    # a matrix equal to its own dense control is not "nearer" than it (strict comparison)
    assert relation(claim, "... nearer")(ctx).ok is False


def test_kaiser_reading_is_undefined_without_eigenvalues_above_one():
    ctx = context(*(np.diag([0.5, 0.2, 0.1]),) * 3)
    ev = relation(td.diag_concentration, "Kaiser eigenvalues")(ctx)
    assert ev.ok is None and "not defined" in ev.detail["undefined"]


def test_stability_compares_middle_and_end():
    d = np.diag([3.0, 2.0, 1.0])
    moved = dense(3, 2.0)  # diagonal energy 4/6 -> 1 - 4/6 = 1/3 > STABLE apart from d's 1
    ev = relation(td.diag_concentration, "stable")(context(d, d, moved))
    assert ev.ok is False
    assert ev.discrepancy == pytest.approx(td.STABLE - (1.0 - 4.0 / 6.0), rel=1e-12)


def test_fft_line_of_a_circulant_holds_all_energy():
    n = 6
    C = sum(c * np.roll(np.eye(n), k, axis=1) for k, c in enumerate([4.0, 1.0, 0.5]))
    C = C + C.T
    d = td.diagnostics(C)
    assert d["fft"]["sum_energy"][0] == pytest.approx(1.0, rel=1e-12)


@pytest.fixture(scope="module")
def small_w8():
    ref = reference.problems.get("prob:W8").make(np.random.default_rng(1), n_samples=6)
    problem = torchimpl.problems.get("prob:W8")(**ref.spec(), dtype=torch.float64)
    return problem.init_params(torch.Generator().manual_seed(3)), problem.as_model()


def test_second_moments_equal_the_registered_kfac_factors(small_w8):
    params, mb = small_w8
    mine = td.layer_factors(params, mb, ("2", "5", "7"), "empirical")
    engine = tc.kfac_factors(params, mb)
    for layer, f in mine.items():
        for key in ("H", "S"):
            ref = engine[layer][key].reshape(f[key].shape).numpy()
            np.testing.assert_allclose(f[key], ref, rtol=1e-12, atol=1e-15, err_msg=layer)
        assert f["H_centred"].shape[0] == f["H"].shape[0] - 1  # bias coordinate dropped


def test_norm_factors_equal_the_registered_estimator():
    ref = reference.problems.get("prob:normnet").make(np.random.default_rng(2), n_samples=5)
    problem = torchimpl.problems.get("prob:normnet")(**ref.spec(), dtype=torch.float64)
    params, mb = problem.init_params(torch.Generator().manual_seed(0)), problem.as_model()
    mine = td.layer_factors(params, mb, ("1",), "empirical")["1"]
    engine = tc.norm_factors(params, mb)["1"]
    np.testing.assert_allclose(mine["H"], engine["H_nu"].numpy(), rtol=1e-12)
    np.testing.assert_allclose(mine["S"], engine["S"].numpy(), rtol=1e-12, atol=1e-15)


def test_layer_diagonals_equal_vmap_gradients_and_kfac_diagonals(small_w8):
    params, mb = small_w8
    diag = td.layer_diagonals(params, mb, mb.y)
    g = tc.per_sample_grads(params, mb)
    kf = tc.kfac_factors(params, mb)
    for layer in ("0", "2", "5", "7"):
        B = mb.x.shape[0]
        w = g[f"{layer}.weight"].reshape(B, g[f"{layer}.bias"].shape[1], -1)
        augmented = torch.cat([w, g[f"{layer}.bias"][..., None]], dim=-1)
        torch.testing.assert_close(diag[layer]["g2"], augmented**2, rtol=1e-10, atol=1e-14)
        torch.testing.assert_close(diag[layer]["s2"].mean(0), kf[layer]["S_D"].reshape(-1))
        torch.testing.assert_close(diag[layer]["H_D"], kf[layer]["H_D"].reshape(-1))


def test_label_counts_are_fractions_of_the_draws(small_w8):
    params, mb = small_w8
    for K in (1, 10):
        w = td._label_counts(params, mb, K, seed=0)
        assert w.shape == (10, mb.x.shape[0])
        torch.testing.assert_close(w.sum(0), torch.ones(mb.x.shape[0], dtype=w.dtype))
        assert torch.all((w * K).round() == w * K)


def test_closeness_uses_the_bootstrap_ci_against_the_threshold():
    def ctx(values):
        metrics = [{"c": {"rel_l1": v, "mae": v, "cosine": 1.0}} for v in values]
        return {"label": "hand-made", "metrics": metrics}

    check = td._close("c")
    below = check(ctx([0.1, 0.2, 0.15]))
    above = check(ctx([0.6, 0.7, 0.9]))
    assert isinstance(below, Evaluation) and below.ok is True and above.ok is False
    assert above.detail["ci95"][0] > 0.0  # CI of mean(rel_l1) − CLOSE


def test_adafisher_arm_is_recorded_as_not_run():
    ev = td._adafisher_arm({})
    assert ev.ok is None and "AdaFisher arm not run" in ev.detail["undefined"]


@pytest.fixture
def fake_series(monkeypatch):
    rng = np.random.default_rng(0)

    def matrix(n):
        X = rng.standard_normal((n, 2 * n))
        return X @ X.T / (2 * n)

    def factors(*_):
        mats = {k: matrix(5) for k in ("H", "S", "H_centred", "S_centred")}
        return tuple({layer: mats for layer in ("1", "2", "5", "7")} for _ in td.CHECKPOINTS)

    def series(workload, optimizer, layer, labels, key):
        return tuple(td.diagnostics(f[layer][key]) for f in factors())

    monkeypatch.setattr(td, "factor_series", factors)
    monkeypatch.setattr(td, "diagnostics_series", series)


@pytest.mark.parametrize("name, images", [("gershgorin_figure", 0), ("factor_heatmaps", 12),
                                          ("fft_figure", 8), ("spectra_figure", 0)])
def test_figures_have_their_panels(fake_series, name, images):
    import matplotlib.pyplot as plt

    fig = getattr(td, name)([{"id": "claim:T.diag_concentration", "verdict": "inconclusive"}])
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    expected = {"gershgorin_figure": 4, "factor_heatmaps": 12, "fft_figure": 8,
                "spectra_figure": 8}[name]
    assert len(panels) == expected
    assert sum(len(ax.images) for ax in panels) == images
    assert "inconclusive" in fig._suptitle.get_text()
    plt.close(fig)
