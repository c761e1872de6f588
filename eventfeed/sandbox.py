"""The one sandbox for templates users write: automation actions, webhook templates, anything later.

Jinja2's `ImmutableSandboxedEnvironment` with Prefect's choices (undefined names chain to "",
the humanize filters, a small `range`), so a Prefect action template pastes unchanged. The
sandbox keeps a template from reaching Python's internals; the rest of this module keeps it
from exhausting the process, with bounds that are checked *while* it renders, in the thread that
renders (a timeout around a thread cannot stop a render):

- CPU: the compiled template calls `Budget.step()` at the start of every block it enters (each
  loop iteration, macro call, `if` branch, call/filter/set block), and a step past the deadline
  raises. Everything that loops or recurses in Jinja runs through a block.
- Size: every piece of output, in any buffer (a macro's, a `{% set %}` block's, the page's), is
  counted; the page's output is capped at `limits.output`, all writes together at `limits.value`.
  Operators and filters that can make a large value from a small one (`*`, `**`, `%`, `~`, `+`,
  `center`, `indent`, `format`, `join`, `replace`, `wordwrap`, `batch`, `slice`, str methods
  such as `ljust` or `format`) are refused *before* they allocate when the result would exceed
  `limits.value`; every other filter's result is measured after.

A single operation on an already large value (a sort of a 1 MB list, say) is not interrupted,
but nothing can make such a value larger than `limits.value`.

Render from a worker thread (or `sync_to_async`), never on the event loop: a render may use its
whole CPU budget.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import operator as ops
import re
import string
import time
from dataclasses import dataclass
from typing import Any, Callable

from jinja2 import ChainableUndefined, nodes
from jinja2 import TemplateSyntaxError as _JinjaSyntaxError
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError


class SandboxError(Exception):
    """A template that cannot be saved or rendered; `reason` says why, for the user to read."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    cpu_seconds: float = 1.0
    # Characters of output the render may return.
    output: int = 65_536
    # Characters any one value (string, list, …) may reach, and all writes to all buffers together.
    value: int = 1_048_576
    # Characters of template source.
    source: int = 65_536
    # Items a `range()` may have (Prefect: 100).
    range: int = 1_000
    # Bits an integer result may have (`2 ** 10 ** 9` would take minutes).
    int_bits: int = 65_536


def default_limits() -> Limits:
    from django.conf import settings

    return Limits(
        cpu_seconds=settings.EVENTFEED_TEMPLATE_CPU_SECONDS,
        output=settings.EVENTFEED_TEMPLATE_MAX_OUTPUT,
    )


class Budget:
    """What one render may still use. Lives in a context variable for the duration of a render."""

    __slots__ = ("limits", "deadline", "steps", "written")

    # The CPU clock is a system call: read it every few steps only. A step is at least one
    # Python-level block, so 8 steps stay far below a millisecond unless each is itself bounded
    # by the size checks.
    CLOCK_EVERY = 8

    def __init__(self, limits: Limits):
        self.limits = limits
        self.deadline = time.thread_time() + limits.cpu_seconds
        self.steps = 0
        self.written = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps % self.CLOCK_EVERY == 0 and time.thread_time() > self.deadline:
            raise SandboxError(f"the template used more than {self.limits.cpu_seconds:g} s of CPU")

    def wrote(self, n: int) -> None:
        self.written += n
        if self.written > self.limits.value:
            raise SandboxError(f"the template wrote more than {self.limits.value} characters (in all its blocks and macros)")


_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("sandbox_budget", default=None)


def _limits() -> Limits:
    budget = _budget.get()
    return budget.limits if budget is not None else _DEFAULT_FOR_COMPILING


# Constant expressions are folded while compiling, outside any render: they are checked against
# these limits, and one that fails is left to fail at render time instead.
_DEFAULT_FOR_COMPILING = Limits()


def _within(size: int, what: str) -> None:
    limit = _limits().value
    if size > limit:
        raise SandboxError(f"{what} would make a value of {size} characters (the limit is {limit})")


def _sized(value: Any, what: str) -> Any:
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        _within(len(value), what)
    elif isinstance(value, int) and not isinstance(value, bool):
        bits = _limits().int_bits
        if value.bit_length() > bits:
            raise SandboxError(f"{what} would make an integer of more than {bits} bits")
    return value


def _length(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return len(str(value))


# -- format strings: widths are allocated before anything can be measured ----------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent_format(fmt: str, what: str) -> None:
    for match in _PERCENT_SPEC.finditer(fmt):
        for part in match.groups():
            if part == "*":
                raise SandboxError(f"{what}: a width taken from the arguments (*) is not allowed")
            if part:
                _within(int(part), what)


def _check_brace_format(fmt: str, what: str) -> None:
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError as e:
        raise SandboxError(f"{what}: {e}") from None
    for _, _, spec, _ in fields:
        if not spec:
            continue
        if "{" in spec:
            raise SandboxError(f"{what}: a width taken from the arguments ({{…}} inside a format spec) is not allowed")
        for digits in re.findall(r"\d+", spec):
            _within(int(digits), what)


# -- operators ---------------------------------------------------------------------------------

def _preflight_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be too large, before Python allocates it."""
    what = f"the operator {operator}"
    bits = _limits().int_bits
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (str, bytes, list, tuple)) and isinstance(n, int):
                _within(len(seq) * max(n, 0), what)
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > bits:
            raise SandboxError(f"{what} would make an integer of more than {bits} bits")
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if right * left.bit_length() > bits:
                raise SandboxError(f"{what} would make an integer of more than {bits} bits")
    elif operator == "%" and isinstance(left, str):
        _check_percent_format(left, what)


def _binop(operator: str, left: Any, right: Any) -> Any:
    _preflight_binop(operator, left, right)
    return _sized(_BINOPS[operator](left, right), f"the operator {operator}")


_BINOPS = {"*": ops.mul, "**": ops.pow, "%": ops.mod, "+": ops.add}


# -- filters -----------------------------------------------------------------------------------

def _lines(s: Any) -> int:
    return str(s).count("\n") + 1


def _join_estimate(a: dict) -> int:
    items = list(a["value"])
    return sum(_length(x) for x in items) + max(len(items) - 1, 0) * _length(a["d"])


# For filters that can make a large value from a small one: the size their result would have,
# computed from the arguments before the filter runs.
_ESTIMATES: dict[str, Callable[[dict], int]] = {
    "center": lambda a: max(_length(a["value"]), int(a["width"])),
    "indent": lambda a: _length(a["s"]) + _lines(a["s"]) * (
        len(a["width"]) if isinstance(a["width"], str) else int(a["width"])),
    "replace": lambda a: _length(a["s"]) + (str(a["s"]).count(str(a["old"])) + 1) * _length(a["new"]),
    "wordwrap": lambda a: _length(a["s"]) * (1 + _length(a["wrapstring"] or "\n")),
    "batch": lambda a: int(a["linecount"]),
    "slice": lambda a: int(a["slices"]),
    "truncate": lambda a: min(_length(a["s"]), int(a["length"])) + _length(a["end"]),
    "tojson": lambda a: int(a["indent"] or 0) * 1_000,
}


def _guard_filter(name: str, func: Callable) -> Callable:
    signature = inspect.signature(func)
    estimate = _ESTIMATES.get(name)
    what = f"the filter {name}"

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        if estimate is not None:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            _within(estimate(bound.arguments), what)
        if name == "format" and args and isinstance(args[0], str):
            _check_percent_format(args[0], what)
        if name == "join":
            # Materialise the items once, so that the estimate and the join see the same ones.
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            bound.arguments["value"] = list(bound.arguments["value"])
            _within(_join_estimate(bound.arguments), what)
            return _sized(func(*bound.args, **bound.kwargs), what)
        return _sized(func(*args, **kwargs), what)

    return guarded


# -- str methods called from templates ---------------------------------------------------------

_WIDTH_METHODS = {"ljust", "rjust", "center", "zfill"}


def _check_method_call(obj: Any, args: tuple, kwargs: dict) -> tuple:
    """Refuse a str method call whose result would be too large; return the arguments to call
    it with (an iterable to join is read once, here)."""
    target = getattr(obj, "__wrapped__", obj)
    owner, name = getattr(target, "__self__", None), getattr(target, "__name__", "")
    if not isinstance(owner, (str, bytes)):
        return args
    what = f"{type(owner).__name__}.{name}()"
    if name in _WIDTH_METHODS and args and isinstance(args[0], int):
        _within(args[0], what)
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        _within(len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * int(tab), what)
    elif name == "replace" and len(args) >= 2:
        _within(len(owner) + (owner.count(args[0]) + 1) * _length(args[1]), what)
    elif name == "join" and args:
        items = list(args[0])
        _within(sum(_length(x) for x in items) + max(len(items) - 1, 0) * len(owner), what)
        return (items, *args[1:])
    elif name in ("format", "format_map") and isinstance(owner, str):
        _check_brace_format(owner, what)
    return args


# -- the environment ---------------------------------------------------------------------------

class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with a budget step at the start of every block and every output
    and concatenation counted."""

    def blockvisit(self, nodes_, frame) -> None:
        self.writeline("environment.sandbox_step()")
        super().blockvisit(nodes_, frame)

    def _output_const_repr(self, group) -> str:
        return f"environment.sandbox_wrote({super()._output_const_repr(group)})"

    def _output_child_pre(self, node, frame, finalize) -> None:
        self.write("environment.sandbox_wrote(")
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node, frame, finalize) -> None:
        super()._output_child_post(node, frame, finalize)
        self.write(")")

    def visit_Concat(self, node, frame) -> None:
        self.write("environment.sandbox_value(")
        super().visit_Concat(node, frame)
        self.write(")")


class _Environment(ImmutableSandboxedEnvironment):
    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def sandbox_step(self) -> None:
        budget = _budget.get()
        if budget is not None:
            budget.step()

    def sandbox_wrote(self, value: str) -> str:
        budget = _budget.get()
        if budget is not None:
            budget.wrote(len(value))
        return value

    def sandbox_value(self, value: Any) -> Any:
        return _sized(value, "the operator ~")

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        return _binop(operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
        args = _check_method_call(__obj, args, kwargs)
        return _sized(super().call(__context, __obj, *args, **kwargs), "a call")


def _range(*args: int) -> range:
    numbers = range(*args)
    limit = _limits().range
    if len(numbers) > limit:
        raise SandboxError(f"range() may have at most {limit} items, not {len(numbers)}")
    return numbers


def label(labels: Any, key: str) -> str:
    """A label by its dotted name: {{ event.resource|label("prefect.resource.name") }}."""
    try:
        return (labels or {}).get(key, "")
    except AttributeError:
        return ""


def to_json(value: Any) -> str:
    """A value as JSON, unescaped (webhook bodies): {{ event|json }}."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _build() -> _Environment:
    env = _Environment(
        undefined=ChainableUndefined,
        autoescape=False,
        extensions=["jinja2_humanize_extension.HumanizeExtension"],
    )
    # These two switch the humanize locale of the whole process.
    env.filters.pop("humanize_activate", None)
    env.filters.pop("humanize_deactivate", None)
    env.filters["label"] = label
    env.filters["json"] = to_json
    env.filters = {name: _guard_filter(name, f) for name, f in env.filters.items()}
    env.globals["range"] = _range
    # lipsum(n=10**6) writes as much text as asked for.
    env.globals.pop("lipsum", None)
    return env


ENVIRONMENT = _build()


def add_filter(name: str, func: Callable) -> None:
    """Give every template a filter an app brings (webhooks' `from_cloud_event`), guarded like
    the built-in ones. Call it from the app's `ready()`, before any template is compiled."""
    ENVIRONMENT.filters[name] = _guard_filter(name, func)
    _compile.cache_clear()

# Nodes that would load other templates: there are none to load.
_LOADERS = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


@functools.lru_cache(maxsize=512)
def _compile(source: str):
    return ENVIRONMENT.from_string(source)


def _line_of(exc: BaseException) -> int | None:
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _explain(exc: BaseException) -> str:
    if isinstance(exc, SandboxError):
        return exc.reason
    if isinstance(exc, _JinjaSyntaxError):
        return f"line {exc.lineno}: {exc.message}"
    if isinstance(exc, RecursionError):
        return "the template recursed too deeply"
    if isinstance(exc, SecurityError):
        reason = f"not allowed in a template: {exc}"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    line = _line_of(exc)
    return f"line {line}: {reason}" if line else reason


def check(source: str, *, limits: Limits | None = None) -> list[str]:
    """What is wrong with a template, found without rendering it (empty: it may be saved)."""
    limits = limits or default_limits()
    if not isinstance(source, str):
        return ["must be a string (a Jinja template)"]
    if len(source) > limits.source:
        return [f"is {len(source)} characters long; a template may have at most {limits.source}"]
    try:
        tree = ENVIRONMENT.parse(source)
        _compile(source)
    except _JinjaSyntaxError as e:
        return [_explain(e)]
    problems = [f"line {node.lineno}: templates cannot load other templates ({{% {type(node).__name__.lower()} %}})"
                for node in tree.find_all(_LOADERS)]
    token = _budget.set(Budget(limits))
    try:
        for node in tree.find_all((nodes.BinExpr, nodes.Filter, nodes.Call)):
            problem = _constant_problem(node)
            if problem:
                problems.append(f"line {node.lineno}: {problem}")
    finally:
        _budget.reset(token)
    return problems


def _constant_problem(node: nodes.Node) -> str | None:
    """A bomb written with constants (`"a" * 10**9`, `range(10**9)`, `"x"|center(10**9)`) is
    refused when saved: run the same size checks the render would, on the constant arguments."""
    try:
        if isinstance(node, nodes.BinExpr) and node.operator in _Environment.intercepted_binops:
            _preflight_binop(node.operator, _const(node.left), _const(node.right))
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "range":
            numbers = range(*[_const(a) for a in node.args])
            if len(numbers) > _limits().range:
                return f"range() may have at most {_limits().range} items, not {len(numbers)}"
        elif isinstance(node, nodes.Filter) and node.name in _ESTIMATES and node.node is not None:
            func = ENVIRONMENT.filters[node.name]
            args = [_const(node.node), *[_const(a) for a in node.args]]
            kwargs = {k.key: _const(k.value) for k in node.kwargs}
            bound = inspect.signature(func).bind_partial(*([None] if _passes_context(func) else []), *args, **kwargs)
            bound.apply_defaults()
            _within(_ESTIMATES[node.name](bound.arguments), f"the filter {node.name}")
    except SandboxError as e:
        return e.reason
    except Exception:  # noqa: BLE001 - not a constant, or not checkable before rendering
        return None
    return None


def _const(node: nodes.Expr) -> Any:
    """A constant expression's value, computed with the render's checks (Jinja does not fold the
    operators the sandbox intercepts)."""
    if isinstance(node, nodes.BinExpr) and node.operator in _Environment.intercepted_binops:
        return _binop(node.operator, _const(node.left), _const(node.right))
    return node.as_const()


def _passes_context(func: Callable) -> bool:
    return hasattr(func, "jinja_pass_arg")


def render(source: str, context: dict[str, Any], *, limits: Limits | None = None) -> str:
    """Render `source` with `context` within `limits`; raise SandboxError with the reason."""
    limits = limits or default_limits()
    if len(source) > limits.source:
        raise SandboxError(f"the template is {len(source)} characters long; the limit is {limits.source}")
    token = _budget.set(Budget(limits))
    try:
        template = _compile(source)
        out, size = [], 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > limits.output:
                raise SandboxError(f"the template's output is longer than {limits.output} characters")
            out.append(chunk)
        return "".join(out)
    except SandboxError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever a template does wrong is reported as its reason
        raise SandboxError(_explain(e)) from None
    finally:
        _budget.reset(token)
