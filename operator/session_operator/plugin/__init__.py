"""``kubectl session``: the Session's verbs for people, through the API server only.

The plugin runs on the official (sync) kubernetes client with the user's own
kubeconfig. It imports only the operator's pure modules (models, durations,
constants), never kopf or the operator's runtime.
"""
