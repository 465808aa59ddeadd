"""Workers: poll work pools and run flow runs as jobs."""
