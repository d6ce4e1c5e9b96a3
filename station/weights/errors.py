"""The one exception of the weights store; the CLI prints it as a one-line user error."""

from __future__ import annotations


class WeightsError(Exception):
    """Backbone weights are missing, could not be downloaded, fail their hash check, or do not fit."""
