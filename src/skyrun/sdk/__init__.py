"""The SDK: flows, tasks, the engine that runs them, futures, logging, artifacts."""
