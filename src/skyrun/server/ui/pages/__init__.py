"""One module per area of the UI (dashboard, runs, deployments, ...), each with a `router`."""
