"""The rdev Session operator: the controller for Sessions, over the shared ``rdev_api``."""
