"""Decoding of logical replication streams (the pgoutput plugin's wire messages)."""
