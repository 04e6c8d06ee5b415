"""One module per endpoint family: a handler function and a thin router that calls it."""
