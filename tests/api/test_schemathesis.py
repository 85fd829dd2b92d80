"""Property-based checks of the whole API from its own OpenAPI document (schemathesis), over real HTTP.

For every documented operation, a bounded number of generated requests (valid ones and deliberately invalid
ones), sent as an operator to a real server: none may get a 5xx, and every answer must match the
documented status codes and schemas. (Driven by hand rather than by schemathesis' pytest plugin, whose
lazy fixture loader does not run under pytest 9.)
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from controller.api.server import ApiThread
from tests.api.helpers import ROLE_TOKEN

MAX_EXAMPLES = 25
HEADERS = {"Authorization": f"Bearer {ROLE_TOKEN['operator']}"}
# No 5xx, and every answer documented (status, content type, body schema). Not checked: that each
# schema-valid body is accepted (a package valid field by field may break a rule across fields: 0/0,
# over 1000 kg in lb, earliest after deadline, a time without a zone: a documented 422), nor that unknown
# query parameters are refused (they are ignored, as HTTP APIs usually do).
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _check(operation: Any, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=HEADERS, checks=CHECKS)

    run()


@pytest.mark.slow  # about 15 s: the longest test of the quick loop
def test_generated_requests_get_no_server_errors_and_documented_answers(api: ApiThread) -> None:
    schema = schemathesis.openapi.from_url(api.url + "/openapi.json", headers=HEADERS)  # needs a token
    failures: dict[str, str] = {}
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _check(operation, mode)
            except Unsatisfiable:  # nothing to make invalid (e.g. /healthz has no parameters)
                continue
            except Exception as exc:  # collect every operation's failure, then report them together
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:2000]
            checked += 1
    assert checked >= 2 * 14
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
