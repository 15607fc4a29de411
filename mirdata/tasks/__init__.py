"""The built-in task specs, one YAML file per task (read by mirdata.registry)."""
