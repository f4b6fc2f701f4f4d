"""The archive: content-addressed file store and its catalogue of dataset versions. Imports only the core."""
