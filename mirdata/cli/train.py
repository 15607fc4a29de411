"""CLI commands of this area (registered on mirdata.cli.app.app)."""
