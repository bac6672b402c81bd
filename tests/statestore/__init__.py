"""statestored and its HA pair."""
