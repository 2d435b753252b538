"""Uploaded files: their metadata in the state store, their bytes in a directory or an S3 bucket.

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""
