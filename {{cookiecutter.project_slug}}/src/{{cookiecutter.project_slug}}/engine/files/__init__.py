"""Uploaded files: their metadata in the state store, their bytes in a directory or an S3 bucket."""
