"""Shared pytest fixtures for the sync tests."""
