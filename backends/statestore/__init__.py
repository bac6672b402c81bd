"""statestored: the subscriber registry, topics, heartbeats and the HA pair."""
