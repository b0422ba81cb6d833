"""Tell Bugster that a deployment is live, once it really is."""

__version__ = "0.1.0"
