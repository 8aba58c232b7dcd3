"""Scanners: what a submission's own files say about its licenses and lineage.

- ``model_card``: README.md front matter (declared license, ``base_model``).
- ``license_catalogue``: the license catalogue (reference texts, obligations).
- ``license_text``: license-text detection and license names in prose.
- ``licenses``: ``scan_licenses``, every license a submission ships or declares.
- ``lineage``: declared ancestors and config hints, ``scan_lineage``.
- ``tokenizer``: vocabulary and merges, for tokenizer comparison.

Scanners read files only: nothing in a submission is imported or executed.
"""
