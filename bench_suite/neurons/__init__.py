"""Neuron plugins: each a SpikingJelly SimpleBaseNode with graded output (see base.py)."""
