"""A small LTI 1.3 platform for development and tests (never registered in production)."""
