"""`--init-from`: start training from a saved classifier's weights."""

from __future__ import annotations

from collections.abc import Callable

from loopynet.errors import InputError
from loopynet.models.base import Network
from loopynet.models.ngram import NgramEnsemble


def init_from(model: Network, saved: Network, saved_words: list[str], words: list[str],
              log: Callable[[str], None] = print) -> None:
    """Copy the weights of `saved` (the network of a loaded classifier whose vocabulary is `saved_words`)
    into `model`, or into its recurrent part when `model` is an `NgramEnsemble` and `saved` is not.

    Raises:
        InputError: the vocabularies differ (other data options or vectors), or the networks differ.
    """
    if saved_words != words:
        raise InputError(f"--init-from: its vocabulary ({len(saved_words):,} words) differs from this run's "
                         f"({len(words):,}); use the same data, vectors and tokenisation options")
    target = model.rnn if isinstance(model, NgramEnsemble) and not isinstance(saved, NgramEnsemble) else model
    try:
        target.load_state_dict(saved.state_dict())
    except RuntimeError as err:
        raise InputError(f"--init-from: the saved network does not match this one ({err})") from None
    log(f"initialised {type(target).__name__} from the saved model")
