"""Document classification (IMDB sentiment, NLP in Action ch. 8): the `Classifier` API, its task and metrics."""
