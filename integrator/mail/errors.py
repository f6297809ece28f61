"""Delivery errors, grouped by what delivery does with them.

* `TransientDeliveryError`: try again (tenacity within the batch, then later with backoff).
* `BackendUnavailable`: the server could not be reached or refused the session (connect, TLS, login): no mail
  in this batch can go out, so the rest of the batch is deferred without hammering the server.
* `PermanentDeliveryError`: the server refused this one mail (5xx); only that mail fails.
"""

from __future__ import annotations

from integrator.errors import IntegratorError, TransientError

__all__ = ["BackendUnavailable", "DeliveryError", "PermanentDeliveryError", "TransientDeliveryError"]


class DeliveryError(IntegratorError):
    """A mail could not be handed to the backend."""


class TransientDeliveryError(TransientError, DeliveryError):
    """Worth retrying: connection refused, timeout, a 4xx answer."""


class BackendUnavailable(TransientDeliveryError):
    """The backend cannot take any mail right now (server down, TLS or login failed)."""


class PermanentDeliveryError(DeliveryError):
    """The server refused this mail for good (5xx); retrying would not help."""
