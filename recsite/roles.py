"""Staff roles and the admin permissions matrix: the one place that says who may open which admin page.

Three groups (created by the data migration `recsite/migrations/0001_roles_groups.py`, kept in step by
`roles_sync` after every `migrate` and by `demo_admin`):

* **Merchandisers** edit widgets and their rules, experiments and their variants, start training runs and
  promote / roll back model versions (model choice); they read the catalogue, impressions and exposures
  (widget stats) and the global model explanations. No shopper data (customers, events, orders, chats).
* **Support** read customers, visitors, sessions, events, orders, impressions, decision traces,
  explanations (the support console) and chat transcripts, plus the catalogue and model versions those
  pages link to. No edits anywhere.
* **Analysts** read everything the shop owns (catalogue, shoppers, recommender, experiments, chats) and
  the explanations. No edits.

Accounts, API keys and Celery beat schedules are superuser-only (operations, not shop data).

The matrix has three parts, all checked by `tests/recsite/test_permissions_matrix.py` against the live
admin (every registered ModelAdmin's changelist / add / change / delete / history page, every extra admin
URL, every admin action, for each role, a superuser and an anonymous visitor):

* `MODEL_ACCESS`   per model: the permissions each role holds (the groups are built from it) and the
                   standard pages the ModelAdmin switches off for everybody (`disabled`).
* `ADMIN_URLS`     per extra admin URL name (ModelAdmin.get_urls extras, AdminSite pages, the support
                   console): who may open it.
* `ADMIN_ACTIONS`  per "app.model:action": who gets the action. `delete_selected` follows the model's
                   delete permission and needs no entry.

A registered model, an extra URL or an action without an entry fails the test: a new page needs a
decision here. Pure data plus one sync function; imports only Django's auth models, lazily.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MERCHANDISERS = "Merchandisers"
SUPPORT = "Support"
ANALYSTS = "Analysts"
ROLES: tuple[str, ...] = (MERCHANDISERS, SUPPORT, ANALYSTS)

# Pseudo-roles used only by the matrix test: a superuser passes every permission check, an anonymous
# visitor none (the admin sends them to the login page).
SUPERUSER = "superuser"
ANONYMOUS = "anonymous"
EVERYONE_STAFF = frozenset({SUPERUSER, *ROLES})

VIEW = frozenset({"view"})
EDIT = frozenset({"view", "add", "change", "delete"})
NONE: frozenset[str] = frozenset()

# Permissions that belong to no model page: (app label, model the row hangs on, codename, name).
CUSTOM_PERMISSIONS: tuple[tuple[str, str, str, str], ...] = (
    (
        "recommender",
        "impression",
        "view_explanations",
        "Can view recommendation explanations (support console, model explanations)",
    ),
)
VIEW_EXPLANATIONS = "recommender.view_explanations"

EXTRA_PERMISSIONS: Mapping[str, frozenset[str]] = {
    MERCHANDISERS: frozenset({VIEW_EXPLANATIONS}),
    SUPPORT: frozenset({VIEW_EXPLANATIONS}),
    ANALYSTS: frozenset({VIEW_EXPLANATIONS}),
}


@dataclass(frozen=True)
class ModelAccess:
    """roles: role -> the model permissions it holds ("view", "add", "change", "delete").
    disabled: standard admin pages ("add", "change", "delete", "changelist", "history") that the ModelAdmin
    refuses to everybody, superusers included (e.g. events are never added by hand)."""

    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    disabled: frozenset[str] = NONE
    registered: bool = True  # False: no admin page of its own (inline-only), permissions still granted

    def perms(self, role: str) -> frozenset[str]:
        return self.roles.get(role, NONE)


def _read(*roles: str) -> dict[str, frozenset[str]]:
    return dict.fromkeys(roles, VIEW)


_SHOPPER_DATA = _read(SUPPORT, ANALYSTS)
_CATALOGUE = _read(MERCHANDISERS, SUPPORT, ANALYSTS)

MODEL_ACCESS: dict[str, ModelAccess] = {
    # --- accounts and operations: superuser only
    "auth.user": ModelAccess(),
    "auth.group": ModelAccess(),
    "rest_framework_api_key.apikey": ModelAccess(),
    "django_celery_beat.periodictask": ModelAccess(),
    "django_celery_beat.clockedschedule": ModelAccess(),
    "django_celery_beat.crontabschedule": ModelAccess(),
    "django_celery_beat.solarschedule": ModelAccess(),
    "django_celery_beat.intervalschedule": ModelAccess(),
    # --- catalogue
    "catalog.category": ModelAccess(_CATALOGUE),
    "catalog.brand": ModelAccess(_CATALOGUE),
    "catalog.product": ModelAccess(_CATALOGUE),
    # --- shoppers (personal data: Support and Analysts only)
    "catalog.customer": ModelAccess(_SHOPPER_DATA),
    "catalog.visitor": ModelAccess(_SHOPPER_DATA),
    "catalog.shoppingsession": ModelAccess(_SHOPPER_DATA),
    "catalog.event": ModelAccess(_SHOPPER_DATA, disabled=frozenset({"add"})),
    "catalog.order": ModelAccess(_SHOPPER_DATA),
    "catalog.orderline": ModelAccess(_SHOPPER_DATA),
    # --- recommender
    "recommender.widget": ModelAccess({MERCHANDISERS: EDIT, ANALYSTS: VIEW}),
    "recommender.widgetrule": ModelAccess({MERCHANDISERS: EDIT, ANALYSTS: VIEW}, registered=False),
    "recommender.trainingrun": ModelAccess({MERCHANDISERS: frozenset({"view", "add"}), ANALYSTS: VIEW}),
    "recommender.modelversion": ModelAccess(
        {MERCHANDISERS: frozenset({"view", "change"}), SUPPORT: VIEW, ANALYSTS: VIEW},
        disabled=frozenset({"add"}),
    ),
    # model choice: which engine serves personalized (evaluation winner or a merchandiser's override)
    "recommender.enginechoice": ModelAccess(
        {MERCHANDISERS: frozenset({"view", "change"}), SUPPORT: VIEW, ANALYSTS: VIEW},
        disabled=frozenset({"add", "delete"}),
    ),
    "recommender.impression": ModelAccess(
        _read(MERCHANDISERS, SUPPORT, ANALYSTS), disabled=frozenset({"add", "delete"})
    ),
    "recommender.decisiontracerecord": ModelAccess(_read(SUPPORT, ANALYSTS), registered=False),
    # --- experiments
    "experiments.experiment": ModelAccess({MERCHANDISERS: EDIT, ANALYSTS: VIEW}),
    "experiments.variant": ModelAccess({MERCHANDISERS: EDIT, ANALYSTS: VIEW}, registered=False),
    "experiments.exposure": ModelAccess(_read(MERCHANDISERS, ANALYSTS), disabled=frozenset({"add"})),
    # --- chat transcripts
    "chatbot.conversation": ModelAccess(_SHOPPER_DATA),
    "chatbot.message": ModelAccess(_SHOPPER_DATA),
}


@dataclass(frozen=True)
class UrlAccess:
    """Who may open an extra admin URL. method: how the test calls it (POST-only views get POST).
    kwargs: URL arguments by name; "<model>" means the pk of the test's fixture row of `model`."""

    allowed: frozenset[str]
    method: str = "GET"
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    query: str = ""


def _u(*who: str, **kw: Any) -> UrlAccess:
    return UrlAccess(allowed=frozenset(who), **kw)


_ALL = tuple(EVERYONE_STAFF)

ADMIN_URLS: dict[str, UrlAccess] = {
    # --- AdminSite pages
    "admin:index": _u(*_ALL),
    "admin:login": _u(*_ALL, ANONYMOUS),
    "admin:logout": _u(*_ALL, ANONYMOUS, method="POST"),
    "admin:password_change": _u(*_ALL),
    "admin:password_change_done": _u(*_ALL),
    "admin:jsi18n": _u(*_ALL),
    "admin:autocomplete": _u(*_ALL, query="app_label=catalog&model_name=product&field_name=category&term=a"),
    "admin:view_on_site": _u(
        *_ALL, kwargs={"content_type_id": "<contenttype:catalog.product>", "object_id": "<catalog.product>"}
    ),
    # app index pages: open to whoever holds a permission in the app
    "admin:app_list:auth": _u(SUPERUSER),
    "admin:app_list:rest_framework_api_key": _u(SUPERUSER),
    "admin:app_list:django_celery_beat": _u(SUPERUSER),
    "admin:app_list:catalog": _u(*_ALL),
    "admin:app_list:recommender": _u(*_ALL),
    "admin:app_list:experiments": _u(SUPERUSER, MERCHANDISERS, ANALYSTS),
    "admin:app_list:chatbot": _u(SUPERUSER, SUPPORT, ANALYSTS),
    # --- accounts
    "admin:auth_user_password_change": _u(SUPERUSER, kwargs={"id": "<auth.user>"}),
    # --- widgets
    "admin:recommender_widget_preview": _u(
        SUPERUSER, MERCHANDISERS, ANALYSTS, kwargs={"pk": "<recommender.widget>"}
    ),
    "admin:recommender_widget_stats": _u(
        SUPERUSER, MERCHANDISERS, ANALYSTS, kwargs={"pk": "<recommender.widget>"}
    ),
    # --- model registry
    "admin:recommender_trainingrun_start": _u(SUPERUSER, MERCHANDISERS),
    "admin:recommender_trainingrun_status": _u(
        SUPERUSER, MERCHANDISERS, ANALYSTS, kwargs={"pk": "<recommender.trainingrun>"}
    ),
    "admin:recommender_modelversion_compare": _u(
        SUPERUSER, MERCHANDISERS, SUPPORT, ANALYSTS, query="ids=<recommender.modelversion>"
    ),
    "admin:recommender_modelversion_promote": _u(
        SUPERUSER, MERCHANDISERS, method="POST", kwargs={"pk": "<recommender.modelversion>"}
    ),
    "admin:recommender_modelversion_rollback": _u(
        SUPERUSER, MERCHANDISERS, method="POST", kwargs={"engine": "ease"}
    ),
    # --- experiments
    "admin:experiments_experiment_results": _u(
        SUPERUSER, MERCHANDISERS, ANALYSTS, kwargs={"pk": "<experiments.experiment>"}
    ),
    "admin:experiments_experiment_lifecycle": _u(
        SUPERUSER, MERCHANDISERS, method="POST", kwargs={"pk": "<experiments.experiment>", "action": "start"}
    ),
    "admin:experiments_experiment_calculator": _u(SUPERUSER, MERCHANDISERS, ANALYSTS),
    # --- support console (recommender/support): shopper pages need view_explanations + view_customer,
    # model pages view_explanations + view_modelversion
    "support:lookup": _u(SUPERUSER, SUPPORT, ANALYSTS),
    "support:customer": _u(SUPERUSER, SUPPORT, ANALYSTS, kwargs={"customer_id": "<catalog.customer>"}),
    "support:visitor": _u(SUPERUSER, SUPPORT, ANALYSTS, kwargs={"visitor": "v-matrix"}),
    "support:trace": _u(
        SUPERUSER, SUPPORT, ANALYSTS, kwargs={"request_id": "6d3c9d2e-1c3b-4c57-9d63-5c9f2f1a0b11"}
    ),
    "support:model": _u(*_ALL, kwargs={"pk": "<recommender.modelversion>"}),
    "support:model_compare": _u(
        *_ALL, query="a=<recommender.modelversion>&b=<recommender.modelversion>&sample=10"
    ),
}

# Admin actions other than delete_selected: "app.model:action" -> who gets it.
ADMIN_ACTIONS: dict[str, frozenset[str]] = {
    "catalog.product:activate": frozenset({SUPERUSER}),
    "catalog.product:deactivate": frozenset({SUPERUSER}),
    "recommender.modelversion:promote_selected": frozenset({SUPERUSER, MERCHANDISERS}),
    "recommender.modelversion:rollback_selected": frozenset({SUPERUSER, MERCHANDISERS}),
    "recommender.modelversion:compare_selected": frozenset({SUPERUSER, MERCHANDISERS, SUPPORT, ANALYSTS}),
    "recommender.enginechoice:follow_evaluation": frozenset({SUPERUSER, MERCHANDISERS}),
    "django_celery_beat.periodictask:enable_tasks": frozenset({SUPERUSER}),
    "django_celery_beat.periodictask:disable_tasks": frozenset({SUPERUSER}),
    "django_celery_beat.periodictask:toggle_tasks": frozenset({SUPERUSER}),
    "django_celery_beat.periodictask:run_tasks": frozenset({SUPERUSER}),
}


def url_access_add(name: str, access: UrlAccess) -> None:
    """Declare an extra admin URL's decision from another module (e.g. a page added at run time)."""
    ADMIN_URLS[name] = access


def role_permissions(role: str) -> frozenset[str]:
    """The "app_label.codename" permissions the role's group holds, from the matrix."""
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.")
    perms = set(EXTRA_PERMISSIONS.get(role, NONE))
    for label, access in MODEL_ACCESS.items():
        app_label, model = label.split(".")
        perms.update(f"{app_label}.{action}_{model}" for action in access.perms(role))
    return frozenset(perms)


def roles_sync(
    *, apps: Any = None, app_configs: Iterable[Any] | None = None, verbosity: int = 0
) -> dict[str, list[str]]:
    """Create the role groups and give each the matrix's permissions. Idempotent and additive: a
    permission an operator added to a group by hand is kept. Returns {role: [permissions not found]}
    (a model that does not exist at this migration state, e.g. one added by a later migration; the
    post-migrate sync grants it once it exists).

    `apps`: a migration's historical registry, or None for the live one."""
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    registry = apps or global_apps
    # Permissions are normally created after *all* migrations (post_migrate); make them exist now. A
    # historical registry's app configs have no models module, which create_permissions needs to see.
    for config in app_configs if app_configs is not None else registry.get_app_configs():
        saved = getattr(config, "models_module", None)
        config.models_module = saved or True
        try:
            create_permissions(config, verbosity=verbosity, apps=registry)
        finally:
            config.models_module = saved
    Group = registry.get_model("auth", "Group")
    Permission = registry.get_model("auth", "Permission")
    ContentType = registry.get_model("contenttypes", "ContentType")
    for app_label, model, codename, name in CUSTOM_PERMISSIONS:
        ct, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        perm, created = Permission.objects.get_or_create(
            content_type=ct, codename=codename, defaults={"name": name}
        )
        if not created and perm.name != name:
            perm.name = name
            perm.save(update_fields=["name"])
    missing: dict[str, list[str]] = {}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        wanted = role_permissions(role)
        found = []
        for full in sorted(wanted):
            app_label, codename = full.split(".", 1)
            perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if perm is None:
                missing.setdefault(role, []).append(full)
            else:
                found.append(perm)
        group.permissions.add(*found)
    return missing


def roles_post_migrate(sender: Any, **kwargs: Any) -> None:
    """post_migrate receiver (connected in RecsiteConfig.ready for the recsite app, which comes last):
    grants permissions of models added after the roles migration ran."""
    roles_sync(verbosity=0)


DEMO_USERS: Mapping[str, str] = {MERCHANDISERS: "merchandiser", SUPPORT: "support", ANALYSTS: "analyst"}


def demo_role_users_create() -> list[tuple[str, str, str]]:
    """Create (or reset) one staff user per role (merchandiser, support, analyst), each in its group
    only and with a fresh random password. Returns [(role, username, password)]."""
    import secrets

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import transaction

    User = get_user_model()
    out = []
    with transaction.atomic():
        roles_sync()
        for role, username in DEMO_USERS.items():
            user, _ = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.is_staff, user.is_superuser, user.is_active = True, False, True
            user.save()
            user.user_permissions.clear()
            user.groups.set([Group.objects.get(name=role)])
            out.append((role, username, password))
    return out
