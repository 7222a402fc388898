"""Loads the Hypothesis profile named by HYPOTHESIS_PROFILE (dev, ci or thorough)."""

import verify.profiles  # noqa: F401  (registers and loads the profile)
