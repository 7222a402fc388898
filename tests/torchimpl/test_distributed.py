"""all_reduce_factors across 2 gloo CPU processes (002 §4.2 Eq. (22); INVENTORY est:dist_agg).

Two spawned ranks each compute ``kfac_factors`` of an MLP and a small CNN on their shard of
one batch and all-reduce them; the parent compares with the factors of the concatenated
batch (float64, 1e-12), with Eq. (22) computed from the saved shard factors and with
est:efim / est:dist_agg. Results come back through ``torch.save`` files; one spawn serves
every test in the module.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

from torchimpl.curvature import ModelBatch, kfac_factors
from torchimpl.curvature.distributed import all_reduce_factors, efim_sum
from torchimpl.estimators import get
from torchimpl.estimators.factors import normalize

WORLD = 2
TOL = 1e-12
DEADLINE_S = 90.0
SHARDS = {"equal": {"mlp": (4, 4), "cnn": (3, 3)}, "unequal": {"mlp": (3, 5), "cnn": (2, 4)}}
LAM = 1e-3

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this torch build",
)


def _problem(name: str) -> ModelBatch:
    """The same float64 model and batch in every process (fixed seed)."""
    torch.manual_seed(0)
    if name == "mlp":
        module = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3))
        x, classes = torch.randn(8, 5), 3
    else:
        module = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(12, 4))
        x, classes = torch.randn(6, 2, 4, 4), 4
    y = torch.randint(0, classes, (x.shape[0],))
    return ModelBatch(module.double(), x.double(), y)


def _factors(mb: ModelBatch, lo: int, hi: int) -> dict:
    shard = ModelBatch(mb.module, mb.x[lo:hi], mb.y[lo:hi])
    return kfac_factors(dict(mb.module.named_parameters()), shard)


def _diagonals(factors: dict) -> dict:
    return {layer: {k: f[k] for k in ("H_D", "S_D")} for layer, f in factors.items()}


def _rank_results(rank: int) -> dict:
    out = {}
    for split, sizes in SHARDS.items():
        for name, (b0, b1) in sizes.items():
            lo, hi = (0, b0) if rank == 0 else (b0, b0 + b1)
            local = _factors(_problem(name), lo, hi)
            out[split, name] = {
                "local": local,
                "equal": all_reduce_factors(local),
                "by_samples": all_reduce_factors(local, weights="by_samples", n_samples=hi - lo),
                "code": all_reduce_factors(_diagonals(local), order="code"),
            }
    try:
        all_reduce_factors({f"layer{rank}": torch.ones(2, dtype=torch.float64)})
        out["mismatch"] = "no error"
    except ValueError as error:
        out["mismatch"] = str(error)
    return out


def _worker(rank: int, init_method: str, out_dir: Path) -> None:
    try:
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=WORLD,
                                timeout=timedelta(seconds=DEADLINE_S / 2))
        try:
            torch.save(_rank_results(rank), out_dir / f"rank{rank}.pt")
        finally:
            dist.destroy_process_group()
    except BaseException:
        (out_dir / f"rank{rank}.err").write_text(traceback.format_exc())
        raise


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """Every rank's results, from one spawn of WORLD gloo processes."""
    out_dir = tmp_path_factory.mktemp("dist")
    init_method = (out_dir / "rendezvous").as_uri()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(r, init_method, out_dir)) for r in range(WORLD)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + DEADLINE_S
    for p in procs:
        p.join(max(deadline - time.monotonic(), 0.1))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    errors = [(out_dir / f"rank{r}.err") for r in range(WORLD)]
    report = "\n".join(e.read_text() for e in errors if e.exists())
    codes = [p.exitcode for p in procs]
    assert codes == [0] * WORLD, f"worker exit codes {codes} (deadline {DEADLINE_S} s)\n{report}"
    return [torch.load(out_dir / f"rank{r}.pt") for r in range(WORLD)]


def _full(name: str) -> dict:
    mb = _problem(name)
    return _factors(mb, 0, mb.x.shape[0])


def _leaves(tree: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _assert_close(got: dict, want: dict, what: str) -> None:
    got, want = _leaves(got), _leaves(want)
    assert got.keys() == want.keys(), what
    for key in want:
        assert got[key].dtype == torch.float64, f"{what} {key}: dtype {got[key].dtype}"
        err = _rel(got[key], want[key])
        assert err <= TOL, f"{what} {key}: relative error {err:.3e} > {TOL}"


def _combine(a: dict, b: dict, wa: float, wb: float) -> dict:
    la, lb = _leaves(a), _leaves(b)
    return {k: wa * la[k] + wb * lb[k] for k in la}


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_equal_shards_reproduce_the_concatenated_batch(ranks, name):
    full = _full(name)
    for rank, results in enumerate(ranks):
        for weights in ("equal", "by_samples"):
            _assert_close(results["equal", name][weights], full, f"rank {rank} {weights}")


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_unequal_shards_need_sample_weights(ranks, name):
    full, (b0, b1) = _full(name), SHARDS["unequal"][name]
    shards = [r["unequal", name]["local"] for r in ranks]
    for rank, results in enumerate(ranks):
        got = results["unequal", name]
        _assert_close(got["by_samples"], full, f"rank {rank} by_samples vs concatenated batch")
        _assert_close(_leaves(got["equal"]), _combine(*shards, 0.5, 0.5), f"rank {rank} Eq. (22)")
        _assert_close(_leaves(got["by_samples"]), _combine(*shards, b0 / (b0 + b1), b1 / (b0 + b1)),
                      f"rank {rank} B_k/B weights")
        gaps = {k: _rel(v, _leaves(full)[k]) for k, v in _leaves(got["equal"]).items()}
        assert max(gaps.values()) > 1e-3, f"equal weights matched unequal shards: {gaps}"


def test_ranks_receive_identical_results(ranks):
    for key, results in ranks[0].items():
        if key == "mismatch":
            continue
        for option in ("equal", "by_samples", "code"):
            r0, r1 = _leaves(results[option]), _leaves(ranks[1][key][option])
            assert all(torch.equal(r0[k], r1[k]) for k in r0), f"{key} {option}"


def _layer_diagonals(factors: dict) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(layer, H_D, S_D) with conv factors of one group flattened to vectors."""
    return [(layer, f["H_D"].reshape(-1), f["S_D"].reshape(-1)) for layer, f in factors.items()]


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_f_tilde_sum_equals_single_process_and_dist_agg(ranks, name):
    efim, dist_agg = get("est:efim"), get("est:dist_agg")
    full = {layer: (H, S) for layer, H, S in _layer_diagonals(_full(name))}
    got = ranks[0]["equal", name]
    shards = [_layer_diagonals(r["equal", name]["local"]) for r in ranks]
    for (layer, H_SUM, S_SUM), *per_rank in zip(_layer_diagonals(got["equal"]), *shards,
                                                 strict=True):
        F_SUM = efim_sum(H_SUM, S_SUM, lam=LAM)
        want = efim(*full[layer], lam=LAM)["F"]
        assert _rel(F_SUM, want) <= TOL, f"{name} {layer}: F~SUM vs single process"
        H_k, S_k = (torch.stack([s[i] for s in per_rank]) for i in (1, 2))
        sim = dist_agg(H_k, S_k, lam=LAM)
        assert _rel(F_SUM, sim["F_SUM"]) <= TOL, f"{name} {layer}: thesis vs est:dist_agg"


@pytest.mark.parametrize("split", ["equal", "unequal"])
def test_code_order_matches_dist_agg(ranks, split):
    dist_agg = get("est:dist_agg")
    for name in ("mlp", "cnn"):
        got = ranks[1][split, name]
        shards = [_layer_diagonals(r[split, name]["local"]) for r in ranks]
        for (layer, H_SUM, S_SUM), *per_rank in zip(_layer_diagonals(got["code"]), *shards,
                                                     strict=True):
            H_k, S_k = (torch.stack([s[i] for s in per_rank]) for i in (1, 2))
            sim = dist_agg(H_k, S_k, lam=LAM, order="code")
            what = f"{split} {name} {layer}"
            assert _rel(H_SUM, sim["H_SUM"]) <= TOL, what
            assert _rel(S_SUM, sim["S_SUM"]) <= TOL, what
            F_code = efim_sum(H_SUM, S_SUM, lam=LAM, order="code")
            assert _rel(F_code, sim["F_SUM"]) <= TOL, what
            F_thesis = dist_agg(H_k, S_k, lam=LAM)["F_SUM"]
            assert _rel(F_code, F_thesis) > 1e-6, f"{what}: code order equals thesis order"


def test_mismatched_layouts_raise_on_every_rank(ranks):
    for results in ranks:
        assert "different factor names" in results["mismatch"], results["mismatch"]


def test_without_process_group_returns_the_input():
    assert not dist.is_initialized()
    factors = _diagonals(_full("mlp"))
    assert all_reduce_factors(factors) is factors
    assert all_reduce_factors(factors, order="code", minmax="none") is factors
    normalized = all_reduce_factors(factors, order="code")
    for layer, f in factors.items():
        for key, x in f.items():
            assert torch.equal(normalized[layer][key], normalize(x, "thesis", "ones"))
            assert float(normalized[layer][key].min()) == 0.0
            assert float(normalized[layer][key].max()) == 1.0


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"order": "both"}, ValueError, "order"),
    ({"weights": "by_rank"}, ValueError, "weights"),
    ({"weights": "by_samples"}, ValueError, "n_samples"),
    ({"weights": "by_samples", "n_samples": 0}, ValueError, "n_samples"),
    ({"order": "code", "minmax": "max"}, ValueError, "minmax"),
])
def test_invalid_options_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        all_reduce_factors({"H_D": torch.ones(3)}, **kwargs)


def test_non_tensor_leaf_raises():
    with pytest.raises(TypeError, match=r"factors\['0'\]\['H_D'\]"):
        all_reduce_factors({"0": {"H_D": [1.0, 2.0]}})
