"""Sequence tagging (CoNLL-2003 NER, NLP in Action 8.1.2.2): the `Tagger` API, its task and metrics."""
