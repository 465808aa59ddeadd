"""Background services the server runs: scheduler, late runs, worker liveness, cancellation."""
