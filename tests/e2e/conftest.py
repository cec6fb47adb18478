"""The e2e folder holds suites that cells run (foreign/): never the project's own tests."""

collect_ignore_glob = ["foreign/*"]
