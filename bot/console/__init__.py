"""The admin console (issue 11 §2, §4): a Flask Blueprint mounted at /admin."""
