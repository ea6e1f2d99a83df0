"""evalrunner's submitit launchers; Hydra only instantiates launchers found in the hydra_plugins namespace."""
