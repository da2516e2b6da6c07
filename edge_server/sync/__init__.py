"""Edge-to-cloud sync: the outbox forwarder, its on-disk spool and the batch format."""
