"""The browser libraries the pages load, served from the project's node_modules (`npm ci` installs them from
package-lock.json): the Socket.IO client and Chart.js."""
from __future__ import annotations

import os

from flask import Response, send_from_directory

NODE_MODULES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "node_modules")


def send_node_script(package_dir: str, filename: str) -> Response:
    """Serve the script `filename` from `node_modules/<package_dir>` (a 404 for anything outside it)."""
    return send_from_directory(os.path.join(NODE_MODULES, package_dir), filename, mimetype="text/javascript")
