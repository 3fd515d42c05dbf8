"""The REST service (``audioclas serve``): predictions, training jobs and a web page; see ``app.create_app``."""
