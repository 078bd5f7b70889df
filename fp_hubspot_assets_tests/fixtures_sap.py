"""Shared pytest fixtures for the sap tests."""
