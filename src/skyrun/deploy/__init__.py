"""Deployments from a project: project file, templating, build/push/pull steps, recipes."""
