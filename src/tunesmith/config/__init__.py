"""Run config: schema, YAML loading with overrides, shipped presets."""
