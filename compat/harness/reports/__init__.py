"""Reports (stage 3): grid, HTML, JUnit, run documents; imports results, config, the leaves."""
