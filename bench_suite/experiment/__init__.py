"""What a run is and how it runs: the spec and its cells, the runner, evaluation, suites."""
