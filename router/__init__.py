"""Routing of clients to edge nodes (see the Router issue); empty for now."""
