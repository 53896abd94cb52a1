"""Model families, one module per paper."""
