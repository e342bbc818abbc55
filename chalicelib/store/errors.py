"""Store errors in the domain's words, raised `from` the botocore error they stand for.

`ConditionFailed` subclasses botocore's ClientError so that the operator's tool (which
reports any AWS error by its code) still sees it as one; domain modules catch it by this
name and never import botocore.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

AwsError = ClientError  # what the operator's tool reports by its code (`aws_code`)


def aws_code(exc: ClientError) -> str:
    """The AWS error code of a failed call ("" if it has none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


class StorageIncomplete(Exception):
    """A bulk operation left work undone (DynamoDB or S3 kept refusing part of it)."""


class ConditionFailed(ClientError):
    """A conditional write's condition was false (ConditionalCheckFailedException)."""

    @classmethod
    def from_client_error(cls, exc: ClientError) -> ConditionFailed:
        return cls(exc.response, exc.operation_name)  # type: ignore[arg-type]
