"""Passes alone; fails in a process that imported test_a_sets_dynamo_config first."""

import torch._dynamo


def test_the_limit_is_torchs_own():
    assert torch._dynamo.config.cache_size_limit != 128
