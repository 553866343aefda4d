"""Domain records and marshmallow schemas: the shared language of the engine, the API and the CLI.

This package imports nothing from ``matcher`` or ``api``.
"""
