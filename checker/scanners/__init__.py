"""Scanners: what a submission's own files say about its licenses and lineage.

- ``model_card``: README.md front matter (declared license, ``base_model``).
- ``licenses``: the license catalogue, license-text detection, ``scan_licenses``.
- ``lineage``: declared ancestors and config hints, ``scan_lineage``.
- ``tokenizer``: vocabulary and merges, for tokenizer comparison.

Scanners read files only: nothing in a submission is imported or executed.
"""
