"""The command-line tools: ``tools/*.py`` in a checkout and the ``ddb-*`` console
scripts of the installed package both run the ``main`` of these modules."""
