"""The foleykit web app (Gradio), thin over :mod:`foleykit.product`: ``foleykit app`` starts it.

``AppConfig`` holds the server settings, ``FoleyApp`` the button handlers (testable without a browser),
``build_app`` / ``launch_app`` the page. Gradio is imported only when the page is built.
"""

from foleykit.app.handlers import AppConfig, FoleyApp


def build_app(config: AppConfig, **kwargs):
    """See :func:`foleykit.app.app.build_app`."""
    from foleykit.app.app import build_app as _build

    return _build(config, **kwargs)


def launch_app(config: AppConfig, **kwargs):
    """See :func:`foleykit.app.app.launch_app`."""
    from foleykit.app.app import launch_app as _launch

    return _launch(config, **kwargs)


__all__ = ["AppConfig", "FoleyApp", "build_app", "launch_app"]
