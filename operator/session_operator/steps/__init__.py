"""The reconcile's steps: each reads and writes one ``Ctx`` through one ``Env``."""
