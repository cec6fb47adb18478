"""Results (stage 2): outcomes, run folders, merge, gate; imports config and the leaves."""
