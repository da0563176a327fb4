"""`InValues`: `field__in=values` for values the column stores as they are (text, integers).

Django's `__in` prepares every value on its own (`get_prep_value`, then `get_db_prep_value`, through the
foreign key to its target field); for the 50 ids of a list page that was most of the time of the
history and products queries behind it, more than the database took to answer. Where a value of the
column's type is its own database value there is nothing to prepare, so the ids go into the
statement's parameters as given. Any other column type is prepared as `__in` would.

On PostgreSQL the values are one parameter, an array (`column = ANY(%s)`): one statement text for any
number of values, so the server prepares it once, and psycopg does not parse a long list of
placeholders again on each call (its cache of parsed statements takes at most 50 parameters).
"""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet
from django.db import models
from django.db.models.lookups import In

# Fields whose Python values of the field's own type are the database values as they are: text fields
# (a str is stored as given) and integer fields (an int is).
TEXT_FIELDS = frozenset({"CharField", "TextField", "SlugField", "EmailField", "URLField"})
STORED_AS_GIVEN = TEXT_FIELDS | frozenset({
    "IntegerField", "BigIntegerField", "SmallIntegerField", "PositiveIntegerField",
    "PositiveBigIntegerField", "PositiveSmallIntegerField", "AutoField", "BigAutoField", "SmallAutoField",
})


def stored_as_given(field: models.Field, *, kinds: frozenset[str] = STORED_AS_GIVEN) -> bool:
    """Whether values of this field (or of the key it refers to) are stored unchanged: the field's internal
    type is one of `kinds` (TEXT_FIELDS where the values are str whatever the field)."""
    target = field.target_field if field.is_relation else field
    return target.get_internal_type() in kinds


class InValues(In):
    """`InValues(F("image_id"), ids)` in `filter()`: `image_id__in=ids` without per-value preparation
    when the column stores the values as given (the values must then be of the field's type).

    Built on an unresolved `F`, the lookup never runs `get_prep_value` per value (there is no field yet
    when it is made); the database preparation in `batch_process_rhs` is the only per-value step left.
    """

    def _plain(self) -> bool:
        field = getattr(self.lhs, "output_field", None)
        return isinstance(field, models.Field) and stored_as_given(field)

    def as_postgresql(self, compiler, connection):
        if self.rhs_is_direct_value() and self._plain():
            lhs_sql, lhs_params = self.process_lhs(compiler, connection)
            # NULL never equals a key, as `IN` leaves it out; no values select no rows, as with `IN`.
            values = [value for value in dict.fromkeys(self.rhs) if value is not None]
            if not values:
                raise EmptyResultSet
            return f"{lhs_sql} = ANY(%s)", (*lhs_params, values)
        return self.as_sql(compiler, connection)

    def batch_process_rhs(self, compiler, connection, rhs=None):
        if self.rhs_is_direct_value():
            values = list(self.rhs if rhs is None else rhs)
            if self._plain():
                return ["%s"] * len(values), values
            # What `__in` on the field would have prepared when it was made (see the class docstring).
            field = self.lhs.output_field
            rhs = [field.get_prep_value(value) for value in values]
        return super().batch_process_rhs(compiler, connection, rhs)
