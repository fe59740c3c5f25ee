"""Importers for the weights people already have (the authors' networks, rosinality's checkpoints)."""
