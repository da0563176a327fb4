"""PostgreSQL tells the web processes when anything a kept token was read from changes (api.tokencache).

A statement trigger on each table an authentication reads — tokens, users, groups, a user's groups and
permissions, a group's permissions, permissions — sends a NOTIFY on api.tokencache.CHANNEL after any
INSERT, UPDATE, DELETE or TRUNCATE, whatever runs it. PostgreSQL sends it when the change commits (never
for one rolled back) and folds the notices of one transaction into one. Nothing on other databases.
"""

from django.conf import settings
from django.db import migrations

FUNCTION = "pod_token_notice"
TRIGGER = "pod_token_notice"
CHANNEL = "pod_auth"  # api.tokencache.CHANNEL, written out: a migration keeps what it did


def _tables(apps) -> list[str]:
    user = apps.get_model(settings.AUTH_USER_MODEL)
    group, permission = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
    token = apps.get_model("authtoken", "Token")
    models = [token, user, group, permission]
    through = [user._meta.get_field(name).remote_field.through for name in ("groups", "user_permissions")
               if any(field.name == name for field in user._meta.get_fields())]
    through.append(group._meta.get_field("permissions").remote_field.through)
    return list(dict.fromkeys(model._meta.db_table for model in models + through))


def forwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    schema_editor.execute(
        f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$"
    )
    for table in _tables(apps):
        schema_editor.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {quote(table)} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )


def backwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in _tables(apps):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {schema_editor.quote_name(table)}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")


class Migration(migrations.Migration):

    dependencies = [
        ("api", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
