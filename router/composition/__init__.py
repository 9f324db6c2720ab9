"""Apollo Federation 2 composition (see router/compose.py for the entry point)."""
