"""Forewarn's benchmarks (`make bench`); figures are ratios against baselines of the same run."""
