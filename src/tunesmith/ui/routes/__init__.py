"""The dashboard's pages (HTML) and its JSON API."""
