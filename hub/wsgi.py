"""WSGI entry for production servers: `gunicorn -k gthread --threads 50 -w 1 hub.wsgi:app`."""
import logging
import os

from config.settings import load_settings
from hub.app import create_app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app(load_settings(os.environ))
