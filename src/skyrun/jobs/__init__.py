"""What the server and the workers share about jobs: worker types, base job templates, exit codes.

The server validates work pools' templates and job variables with these modules
and never imports `skyrun.workers`; the workers render and launch jobs with them.
"""
