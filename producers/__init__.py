"""Producers: everything that writes to border.events (replay, simulate, record)."""
