"""What every room may import: errors, parameters, the registry, the plugin contracts, tasks, profiles."""
