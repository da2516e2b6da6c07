"""The cloud side: consume the edge batches, store records idempotently, serve them."""
