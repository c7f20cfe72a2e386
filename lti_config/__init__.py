"""Tool-side LTI configuration: the tool's own keys, registrations metadata, their CLI."""
