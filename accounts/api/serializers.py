from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from ..models import Workspace


class WorkspaceSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Workspace
        fields = ["slug", "name", "role", "auto_refresh_segments", "created_at"]

    def get_role(self, obj: Workspace) -> str | None:
        roles = self.context.get("roles", {})
        return roles.get(obj.pk)


class WorkspaceSettingsSerializer(serializers.Serializer):
    auto_refresh_segments = serializers.BooleanField(
        required=False, help_text="refresh the segments after each import that publishes a new "
                                  "dataset version")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise ValidationError({"auto_refresh_segments": ["This field is required."]})
        return attrs


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class NumberField(serializers.FloatField):
    """A float that refuses true and false: JSON booleans are not numbers (DRF's FloatField
    would store ``true`` as 1.0)."""

    default_error_messages = {"boolean": "A valid number is required, not true or false."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("boolean")
        return super().to_internal_value(data)


class NumbersModelSerializer(serializers.ModelSerializer):
    """A model serializer whose float fields are ``NumberField``s; the range of each comes from
    the model field's validators (``accounts.domains.within``), schema included."""

    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping,
                                models.FloatField: NumberField}


class WorkspaceScoped(NumbersModelSerializer):
    """Creates take the workspace slug; it can never change afterwards."""

    workspace = serializers.SlugField(write_only=True, required=True)
    workspace_slug = serializers.SerializerMethodField()

    def get_workspace_slug(self, obj) -> str:  # type: ignore[no-untyped-def]
        return obj.workspace.slug

    def get_fields(self):  # type: ignore[no-untyped-def]
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list):
            fields["workspace"].required = False
            fields["workspace"].read_only = True
        return fields


def validated(serializer_class: type[serializers.Serializer], request: Any,
              **options: Any) -> dict[str, Any]:
    """The request's body checked by ``serializer_class`` (``options``: e.g. ``partial=True``):
    its validated data, or a 400 by field."""
    body = serializer_class(data=request.data, **options)
    body.is_valid(raise_exception=True)
    return body.validated_data


def field_invalid(error: Any) -> ValidationError:
    """An input refused by a service (an ``events.errors.FieldError``: ``field`` and
    ``message``) as the API's 400 by field."""
    return ValidationError({error.field: [error.message]})


def model_invalid(error: DjangoValidationError) -> ValidationError:
    """A model's refusal (its validators or ``clean()``) as the API's 400 by field."""
    if hasattr(error, "error_dict"):
        return ValidationError({("non_field_errors" if name == NON_FIELD_ERRORS else name): messages
                                for name, messages in error.message_dict.items()})
    return ValidationError({"non_field_errors": error.messages})
