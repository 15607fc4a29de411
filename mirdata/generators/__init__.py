"""Generators: make media and return the facts known by construction; they know nothing about questions."""
