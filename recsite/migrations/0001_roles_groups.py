"""Create the staff role groups (Merchandisers, Support, Analysts) with the permissions that
recsite/roles.py declares. Reversible: the groups are deleted on the way back."""

from django.db import migrations


def groups_create(apps, schema_editor):
    from recsite.roles import roles_sync

    roles_sync(apps=apps)


def groups_delete(apps, schema_editor):
    from recsite.roles import ROLES

    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("catalog", "0002_order_name"),
        ("recommender", "0003_decision_trace_record_and_retention"),
        ("experiments", "0001_initial"),
        ("chatbot", "0001_initial"),
    ]

    operations = [migrations.RunPython(groups_create, groups_delete)]
