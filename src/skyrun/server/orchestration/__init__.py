"""State-transition rules for runs, as pure functions over (current, proposed)."""
