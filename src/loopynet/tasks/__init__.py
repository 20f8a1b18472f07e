"""Task-specific code: what a network is trained and used for (classification, tagging), on top of the
generic training loop (loopynet.train) and the networks (loopynet.models)."""
