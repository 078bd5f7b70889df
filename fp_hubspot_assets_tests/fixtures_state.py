"""Shared pytest fixtures for the state tests."""
