"""HTTP layer: app factory, settings, OpenAI protocol, routes, errors, auth, metrics."""
