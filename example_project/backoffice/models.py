"""The trading back office's models."""
