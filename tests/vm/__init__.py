"""Ground truth for hot code loading, observed on a running Erlang VM."""
