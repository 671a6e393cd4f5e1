"""A plugin whose import fails, as a plugin with a missing dependency would."""

raise ImportError("daprplane_sample.broken needs a library that is not installed")
