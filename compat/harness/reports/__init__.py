"""Reports (stage 3): one grid (grid), its renderings (console, markdown, html) and the run's
documents, one writer per format (documents.WRITERS); imports results, config, the leaves."""
