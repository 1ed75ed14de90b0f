"""The CLI commands, one module per stage; ``veille.main`` puts them together."""
