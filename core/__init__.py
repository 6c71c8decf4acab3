"""Domain primitives every layer may use: money in minor units with currency exponents,
and the card-number tripwire. No models, no I/O (docs/architecture.md)."""
