"""Benchmarks: the `ssu-bench` harness (cli, steps, report, ladder, tiny_llava) and stand-alone scripts.

The harness is a package (`ssu-bench` = bench.cli:main); the other files are scripts run as
`python bench/<name>.py` that print figures against a baseline measured in the same run. Importing the
package does nothing else: every module keeps its work behind functions and `if __name__ == "__main__"`.
bench may import every package of ours; none of ours imports bench (tests may).
"""
