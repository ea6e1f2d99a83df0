"""evalrunner's configs. Hydra imports this package to read them, so the schemas they extend and the resolvers
they use (evalrunner/config.py, evalrunner/folders.py) are registered by whoever composes them, even without
`import evalrunner.config` (the package itself is lazy)."""

import evalrunner.config  # noqa: F401
