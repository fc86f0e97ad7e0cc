"""Schemathesis over the OpenAPI schema, in-process through the WSGI application.

Every operation of /api/v1/schema/ gets a few generated requests (positive data: what the
schema says is valid) as acme's admin with a real API token. Path parameters point at the
acme objects of tests/api/conftest.py's world, and half the generated bodies name them too,
so the requests reach the views' real work instead of stopping at 404. No response may be a
server error, and every response must match the schema: a documented status, its content
type and its body's schema.

Each request runs in a savepoint that is rolled back (jobs queued on commit never run), so
the examples do not change the world for each other. Bounded and deterministic: a handful
of examples per operation, derandomized, no example database, no deadline, no shrinking.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import ApiToken
from config.wsgi import application

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# The acme object a collection's path parameter points at (see conftest.py's world).
OBJECT_OF = {"workspaces": "workspace", "datasets": "dataset", "imports": "import",
             "jobs": "job", "segments": "segment", "snapshots": "snapshot",
             "refreshes": "refresh", "analyses": "analysis", "hypotheses": "hypothesis",
             "experiments": "experiment", "learnings": "learning",
             "investments": "investment", "scenarios": "scenario", "runs": "run",
             "decisions": "decision", "webhooks": "webhook", "value-models": "value_model",
             "roadmap-versions": "version"}


def _references(world: dict[str, Any]) -> dict[str, Any]:
    """Body fields that name acme objects, and the real values to put there."""
    segment = world["segment"].pk
    return {"workspace": "acme", "dataset": world["dataset"].pk, "segment": segment,
            "hypothesis": world["hypothesis_x"].pk, "investment": world["investment"].pk,
            "segments": [segment], "target_segments": [segment], "breakdown_segments": [segment],
            "value_model": world["value_model"].pk}


class _Rollback(Exception):
    pass


def _path_parameters(path: str, method: str, world: dict[str, Any]) -> dict[str, Any]:
    names = re.findall(r"\{([^}]+)\}", path)
    collection = path.removeprefix("/api/v1/").split("/")[0]
    key = OBJECT_OF.get(collection)
    if not names or key is None:
        return {}  # a collection, or one this table does not know yet: generated values
    if key == "dataset" and method == "DELETE":
        key = "scratch"  # deleting the dataset removes its stored events at once
    obj = world[key]
    return {names[0]: obj.slug if key == "workspace" else obj.pk}


def _explain(exc: BaseException) -> str:
    text = str(exc)
    for sub in getattr(exc, "exceptions", ()):
        text += f"\n  - {type(sub).__name__}: {sub}"
    return text


@pytest.fixture
def wsgi_in_test_transaction():  # type: ignore[no-untyped-def]
    """The WSGI handler closes the database connection around each request; the test's
    transaction must survive it (Django's test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_schema_operations_have_no_server_errors_and_conform(world, team,
                                                             wsgi_in_test_transaction):
    app = wsgi_in_test_transaction
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", app)
    _, key = ApiToken.issue(user=team["admin"], name="schemathesis")
    auth = {"Authorization": f"Bearer {key}"}
    references = _references(world)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        strategy = operation.as_strategy(path_parameters=_path_parameters(
            operation.path, operation.method.upper(), world))

        @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                  phases=[Phase.explicit, Phase.generate], print_blob=False,
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy, real_references=st.booleans())
        def run(case: Any, real_references: bool) -> None:
            if real_references and isinstance(case.body, dict):
                # half the bodies name acme's objects, so creates get past "not found"
                case.body.update({k: v for k, v in references.items() if k in case.body})
            response: dict[str, Any] = {}
            try:
                with transaction.atomic():
                    response["r"] = case.call(headers=auth)
                    raise _Rollback
            except _Rollback:
                pass
            case.validate_response(response["r"], checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # every failing operation, at once
            failures.append(f"{operation.method.upper()} {operation.path}: {_explain(exc)}")
    assert operations >= 40, operations
    assert not failures, f"{len(failures)} of {operations} operations failed:\n\n" + \
        "\n\n".join(failures)
