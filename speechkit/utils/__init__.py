"""Small helpers shared across speechkit."""
