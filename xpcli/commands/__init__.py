"""Click commands, one module per concern; each imports heavy modules inside its body."""
