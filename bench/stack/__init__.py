"""What bench/callbacks.py serves besides Paydesk itself: the production settings plus one
bench-only view, the store-only floor (urls.py). Never part of a deployment."""
