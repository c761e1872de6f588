from django.apps import AppConfig


class BenchmarksConfig(AppConfig):
    """The benchmark commands (bench_feed, bench_ingest, bench_live, bench_retention), their data
    and their process helpers: tools to measure the application, kept out of the apps they measure."""

    name = "eventfeed.benchmarks"
    label = "benchmarks"
    verbose_name = "Benchmarks"
