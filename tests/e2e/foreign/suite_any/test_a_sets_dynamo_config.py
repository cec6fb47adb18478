"""Sets dynamo's recompile limit at import, as upstream's numeric-debugger file does."""

import torch._dynamo

torch._dynamo.config.cache_size_limit = 128


def test_the_limit_is_set_here():
    assert torch._dynamo.config.cache_size_limit == 128
