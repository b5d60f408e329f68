"""Progress helpers for rule authors: read and write collection progress in the database."""
