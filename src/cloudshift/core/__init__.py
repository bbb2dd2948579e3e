"""The neutral core: errors, redaction, units, locations (URIs), checksums and state paths.

Every other package may import from here; nothing here imports from the rest of cloudshift.
"""
