"""The web apps of docs/web-apps.md, under their real servers (see tests/support/webapps.py)."""

from support.webapps import start as start
