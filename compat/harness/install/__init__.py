"""Install (stage 2): pins, env plans, locks, uv envs, prefetch; imports config and the leaves."""
