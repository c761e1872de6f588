import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from eventfeed.events import export, jsoncodec
from eventfeed.events.filter_parsers import from_json
from eventfeed.events.filters import FilterError


class Command(BaseCommand):
    help = (
        "Write every event a filter matches to a file (or standard output), as NDJSON in Prefect's "
        "shape or as CSV, a page at a time: archive before pruning."
    )

    def add_arguments(self, parser):
        parser.add_argument("--filter", default="{}", help="an EventFilter as JSON, or @FILE to read it from a file")
        parser.add_argument("--format", choices=sorted(export.FORMATS), default="ndjson")
        parser.add_argument("--output", "-o", default="-", help="the file to write ('-', the default, is standard output)")

    def handle(self, *args, filter: str, format: str, output: str, **options):
        text = Path(filter[1:]).read_text() if filter.startswith("@") else filter
        try:
            f = from_json(jsoncodec.loads(text))
        except ValueError as e:  # JSONDecodeError and FilterError both
            problems = e.as_list() if isinstance(e, FilterError) else [{"path": "filter", "rule": str(e)}]
            raise CommandError("; ".join(f"{p['path']}: {p['rule']}" for p in problems)) from None
        out = sys.stdout if output == "-" else open(output, "w", encoding="utf-8", newline="")
        try:
            for chunk in export.chunks(f, format):
                out.write(chunk)
        finally:
            if out is not sys.stdout:
                out.close()
        if output != "-":
            self.stderr.write(f"Wrote {output} ({format}).")
