"""Commands (stage 4): the command line, one module per command; imports any stage below."""
