"""The contract: IDs, registries, rules with defaults, immutable state."""

import pytest

from contract import Estimator, Registry, Rule, freeze, split_id


def test_split_id_reads_base_and_variant():
    assert split_id("rule:af.adafisher[code]") == ("rule:af.adafisher", "code")
    assert split_id("claim:U.newton_pure") == ("claim:U.newton_pure", None)


@pytest.mark.parametrize("bad", ["adam", "rule:", "rule:a[b", "thing:x", "rule:x[a-b]"])
def test_split_id_rejects_malformed_ids(bad):
    with pytest.raises(ValueError, match="malformed ID"):
        split_id(bad)


def test_registry_get_ids_and_duplicates():
    registry = Registry("rule")
    registry.register("rule:uv.newton", 1)
    registry.register("rule:uv.newton[x]", 2)
    registry.register("rule:fo.sgd", 3)
    assert registry.ids("rule:uv.*") == ["rule:uv.newton", "rule:uv.newton[x]"]
    assert registry.get("rule:uv.newton[x]") == 2
    assert registry.ids("rule:uv.newton[x]") == ["rule:uv.newton[x]"]
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("rule:fo.sgd", 4)
    with pytest.raises(KeyError, match="did you mean"):
        registry.get("rule:uv.newtn")


def _update(grads, state, params, oracle, *, lr):
    return {k: -lr * g for k, g in grads.items()}, freeze(state, t=state["t"] + 1)


def test_rule_step_fills_defaults_and_rejects_unknown_names():
    rule = Rule("rule:test.sgd", init=lambda p: freeze(t=0), update=_update, hyper={"lr": 0.5})
    state = rule.init({})
    updates, new_state = rule.step({"x": 2.0}, state, {"x": 1.0}, None)
    assert updates == {"x": -1.0} and new_state["t"] == 1 and state["t"] == 0
    assert rule.step({"x": 2.0}, state, {"x": 1.0}, None, lr=1.0)[0] == {"x": -2.0}
    with pytest.raises(TypeError, match="unknown hyperparameter"):
        rule.step({"x": 2.0}, state, {"x": 1.0}, None, momentum=0.9)


def test_state_and_defaults_are_immutable():
    rule = Rule("rule:test.sgd", init=lambda p: freeze(t=0), update=_update, hyper={"lr": 0.5})
    with pytest.raises(TypeError):
        rule.hyper["lr"] = 1.0
    with pytest.raises(TypeError):
        rule.init({})["t"] = 3


def test_estimator_options_are_defaults():
    est = Estimator("est:test.scale", fn=lambda x, *, scale: scale * x, options={"scale": 2.0})
    assert est(3.0) == 6.0 and est(3.0, scale=1.0) == 3.0
