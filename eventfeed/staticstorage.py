"""Static files as production serves them: hashed names (cached for a year, `immutable`),
gzip and brotli copies made once by collectstatic, and ES module imports rewritten to the hashed
names, so a page's modules are cached as long as the page's own script."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    # `import … from "./lib/times.js"` inside feed.js becomes "./lib/times.<hash>.js".
    support_js_module_import_aggregation = True
    # A process started with DEBUG off before collectstatic ran (a benchmark, a quick check)
    # still renders its pages, with unhashed static URLs, rather than failing every page.
    manifest_strict = False
