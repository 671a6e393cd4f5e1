"""Tests of the container image definition (deploy/Dockerfile) against the project."""
