"""Execute (stage 3): cells run in their envs; imports install, results, config, the leaves."""
