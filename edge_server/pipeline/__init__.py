"""Sessions, decoding, validation and scheduling of analysis work (no wire formats here)."""
