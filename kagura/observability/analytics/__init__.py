"""Where questions are answered: the catalogue's methods (one per `sql/*.sql` file) and
the sandbox that runs an ad-hoc SQL text read-only, within limits."""
