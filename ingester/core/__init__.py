"""Low-level helpers every layer of the daemon may import; they import nothing of it."""
