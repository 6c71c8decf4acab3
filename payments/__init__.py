"""Peer apps around phone payments, each with its own models, services, selectors, API
and admin: `sessions` (agent pay sessions and Twilio's callbacks), `ivr`, `reconciliation`,
`reports`. A peer app imports `core`, `config`, `tenants`, `connectors` and, where it builds
on it, `sessions`; never the other way round (docs/architecture.md)."""
