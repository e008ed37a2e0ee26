"""``kubectl session``: the Session's verbs for people, through the API server only.

The plugin runs on the official (sync) kubernetes client with the user's own
kubeconfig (the ``plugin`` extra installs it). Of this project it imports only
``rdev_api``, the facts it shares with the operator, never the operator itself.
"""
