"""The archive as a service: one ASGI application (``owl serve``) over a site.

Mounted parts: ``/sia`` (IVOA SIA v2 query + VOSI documents, for pyvo and astroquery), ``/api``
(JSON search, dataset records, downloads, reprocessing requests, notifications). The operators'
console is meant to be one more mount of the same application (see :func:`app.create_app`).
"""
