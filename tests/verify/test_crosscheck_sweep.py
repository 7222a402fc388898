"""Every registered ID: the reference and its torch mirror agree, in float64 and float32.

The example budget is the active Hypothesis profile's (``ci`` under ``nox -s tests``); the
full sweep with the ``thorough`` profile is ``nox -s verify``.
"""

import pytest

from verify import crosscheck, profiles

IDS = [key for _, key in crosscheck.registered()]


@pytest.mark.parametrize("dtype", crosscheck.DTYPES)
@pytest.mark.parametrize("key", IDS)
def test_reference_and_torch_mirror_agree(key, dtype):
    (result,) = crosscheck.run(key, (dtype,), profiles.max_examples())
    assert result.passed, f"{result.message}\nreproduce: {result.repro()}"
