"""What bench/callbacks.py serves besides Paydesk itself: the production settings plus one
bench-only view, the store-only floor (urls.py). Never part of a deployment.

Names shared by the view and the bench that drives it; this module imports nothing, so
the bench can read them without setting Django up."""

STORE_ONLY_PATH = "/bench/store-only/"
STORE_ONLY_TABLE = "bench_store_only"  # created by bench/callbacks.py after migrating
