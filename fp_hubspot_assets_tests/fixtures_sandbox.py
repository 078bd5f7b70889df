"""Shared pytest fixtures for the sandbox tests."""
