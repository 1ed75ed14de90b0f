"""The shared core every stage imports: the notice record, configuration, profiles, dates, CELEX, names."""
