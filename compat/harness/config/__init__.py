"""Config (stage 1): the matrix, its channels and applicability rules; imports only the leaves."""
