"""Published checkpoints and their index (the repository's weights/ folder)."""
