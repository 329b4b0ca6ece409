"""hardwire: compile small programs into exact transformer weights."""
