"""Read models derived from the ledger's event log, and the runner that feeds them."""

import logging

# A library logs; the application decides where it goes (``ledger projections run`` sends
# it to stderr). Without this, Python's last-resort handler would print errors twice.
logging.getLogger(__name__).addHandler(logging.NullHandler())
