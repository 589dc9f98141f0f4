"""One module per ``osilab`` sub-command; see :mod:`osilab.cli` for the contract."""
