"""Production settings (config.settings.base, configured through the environment as in
production) with one difference: the URLconf adds the bench's store-only view."""

from config.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.stack.urls"
