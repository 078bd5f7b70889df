"""Shared pytest fixtures for the mapping tests."""
