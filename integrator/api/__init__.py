"""The portal API (`integrator serve`): an HTTP face over the store and `integrator.portal`, for a web shop's
backend in any language. Importing this package imports no web framework: `integrator.api.clients` serves the
CLI too, and FastAPI is loaded only by `integrator.api.app` when the server starts."""
