"""The permissions matrix (recsite/roles.py) against the live admin.

For a superuser, each role's demo-like user (member of its group only) and an anonymous visitor, every
registered ModelAdmin's changelist / add / change / delete / history page, every other admin URL (AdminSite
pages, ModelAdmin.get_urls extras, the support console) and every admin action is tried and compared with
the matrix. A registered model, URL or action without a decision in the matrix fails
`test_every_admin_page_and_action_has_a_decision`: declare the new page in recsite/roles.py (and add a row
for a new model to `_world` below so its object pages can be opened).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.views.generic import RedirectView

from recsite.roles import (
    ADMIN_ACTIONS,
    ADMIN_URLS,
    ANONYMOUS,
    MODEL_ACCESS,
    ROLES,
    SUPERUSER,
    role_permissions,
    roles_sync,
)
from tests.factories import (
    CustomerFactory,
    EventFactory,
    OrderFactory,
    OrderLineFactory,
    ProductFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

WHO = (SUPERUSER, *ROLES, ANONYMOUS)
PAGES = ("changelist", "add", "change", "delete", "history")
PAGE_NEEDS = {
    "changelist": {"view", "change"},
    "change": {"view", "change"},
    "history": {"view", "change"},
    "add": {"add"},
    "delete": {"delete"},
}


def _world() -> dict[str, object]:
    """One row of every model that has admin pages (the object pages need one)."""
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )
    from rest_framework_api_key.models import APIKey

    from catalog.models import ShoppingSession, Visitor
    from chatbot.models import Conversation, Message
    from experiments.models import Experiment, Exposure, Variant
    from recommender.models import (
        DecisionTraceRecord,
        EngineChoice,
        Impression,
        ModelVersion,
        TrainingRun,
        Widget,
        WidgetRule,
    )

    now = timezone.now()
    product = ProductFactory()
    customer = CustomerFactory()
    visitor = Visitor.objects.create(id="v-matrix", customer=customer)
    session = ShoppingSession.objects.create(
        id="s-matrix", visitor=visitor, customer=customer, started_at=now, last_seen=now
    )
    event = EventFactory(product=product, customer=customer, visitor_id="v-matrix")
    order = OrderFactory(customer=customer, total=Decimal("19.99"))
    line = OrderLineFactory(order=order, product=product)
    version = ModelVersion.objects.create(engine="ease", status=ModelVersion.Status.ACTIVE, promoted_at=now)
    run = TrainingRun.objects.create(engine="ease", model_version=version)
    widget = Widget.objects.create(
        slug="matrix", title="Matrix", placement="home", strategy="popular", fallback_strategy="trending"
    )
    WidgetRule.objects.create(widget=widget, kind="exclude_purchased", params={})
    impression = Impression.objects.create(
        request_id="6d3c9d2e-1c3b-4c57-9d63-5c9f2f1a0b11",
        widget=widget,
        product=product,
        customer=customer,
        position=0,
        created_at=now,
    )
    experiment = Experiment.objects.create(slug="matrix", name="Matrix")
    experiment.widgets.set([widget])
    variant = Variant.objects.create(experiment=experiment, name="A", is_control=True)
    Variant.objects.create(experiment=experiment, name="B")
    exposure = Exposure.objects.create(
        experiment=experiment, variant=variant, subject_id="cust-x", first_exposed_at=now
    )
    conversation = Conversation.objects.create(customer=customer)
    message = Message.objects.create(conversation=conversation, role="user", text="hello")
    interval = IntervalSchedule.objects.create(every=10, period="seconds")
    rows: dict[str, object] = {
        "auth.user": UserFactory(username="someone"),
        "auth.group": Group.objects.get(name=ROLES[0]),
        "rest_framework_api_key.apikey": APIKey.objects.create_key(name="matrix")[0],
        "django_celery_beat.intervalschedule": interval,
        "django_celery_beat.crontabschedule": CrontabSchedule.objects.create(minute="5"),
        "django_celery_beat.solarschedule": SolarSchedule.objects.create(
            event="sunrise", latitude=Decimal("10"), longitude=Decimal("10")
        ),
        "django_celery_beat.clockedschedule": ClockedSchedule.objects.create(
            clocked_time=now + timedelta(days=1)
        ),
        "django_celery_beat.periodictask": PeriodicTask.objects.create(
            name="matrix", task="recommender.tasks.nothing", interval=interval
        ),
        "catalog.category": product.category,
        "catalog.brand": product.brand,
        "catalog.product": product,
        "catalog.customer": customer,
        "catalog.visitor": visitor,
        "catalog.shoppingsession": session,
        "catalog.event": event,
        "catalog.order": order,
        "catalog.orderline": line,
        "recommender.trainingrun": run,
        "recommender.modelversion": version,
        "recommender.enginechoice": EngineChoice.objects.create(strategy="personalized", engine="ease"),
        "recommender.widget": widget,
        "recommender.impression": impression,
        "experiments.experiment": experiment,
        "experiments.exposure": exposure,
        "chatbot.conversation": conversation,
        "chatbot.message": message,
    }
    rows["recommender.decisiontracerecord"] = DecisionTraceRecord.objects.create(
        request_id=impression.request_id,
        widget=widget,
        customer=customer,
        created_at=now,
        trace={"request_id": str(impression.request_id), "widget": "matrix", "strategy": "popular", "k": 1},
    )
    return rows


def _user(who: str):
    if who == ANONYMOUS:
        return None
    if who == SUPERUSER:
        return UserFactory(username="matrix-root", is_staff=True, is_superuser=True)
    user = UserFactory(username=f"matrix-{who.lower()}", is_staff=True)
    user.groups.set([Group.objects.get(name=who)])
    return user


def _client(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _allowed(response, *, not_found_is_forbidden: bool = False) -> bool | str:
    """True / False, or a string describing a response that is neither (a broken page)."""
    code = response.status_code
    if code == 200:
        return True
    if code == 302:
        return not response["Location"].startswith(reverse("admin:login"))
    if code == 403 or (code == 404 and not_found_is_forbidden):
        return False
    return f"HTTP {code}"


def _registered() -> dict[str, admin.ModelAdmin]:
    return {model._meta.label_lower: ma for model, ma in admin.site._registry.items()}


def _expected_page(label: str, page: str, who: str) -> bool:
    access = MODEL_ACCESS[label]
    if who == ANONYMOUS or page in access.disabled:
        return False
    if who == SUPERUSER:
        return True
    return bool(access.perms(who) & PAGE_NEEDS[page])


def _model_page_url(label: str, page: str, obj) -> str:
    app_label, model = label.split(".")
    name = f"admin:{app_label}_{model}_{page}"
    return reverse(name) if page in ("changelist", "add") else reverse(name, args=[obj.pk])


STANDARD_SUFFIXES = tuple(f"_{p}" for p in PAGES)


def _extra_admin_urls() -> dict[str, URLPattern]:
    """Every named URL under /admin/ that is not a ModelAdmin's standard page: "namespace:name" -> pattern.
    The AdminSite's app_list pattern is split per app label ("admin:app_list:<label>")."""
    found: dict[str, URLPattern] = {}
    unnamed: list[str] = []

    def walk(patterns, namespace: str, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = f"{namespace}:{p.namespace}" if namespace and p.namespace else (p.namespace or namespace)
                walk(p.url_patterns, ns, prefix + str(p.pattern))
                continue
            callback = p.callback
            if getattr(callback, "view_class", None) is RedirectView or callback.__name__ == "catch_all_view":
                continue  # the admin's "<object_id>/" redirect and its final catch-all
            if not p.name:
                unnamed.append(prefix + str(p.pattern))
                continue
            full = f"{namespace}:{p.name}" if namespace else p.name
            if full.startswith("admin:") and p.name.endswith(STANDARD_SUFFIXES):
                label = p.name.rsplit("_", 1)[0]
                if any(f"{m.replace('.', '_')}" == label for m in _registered()):
                    continue
            if full == "admin:app_list":
                for app_label in sorted({m.split(".")[0] for m in _registered()}):
                    found[f"admin:app_list:{app_label}"] = p
                continue
            found[full] = p

    for p in get_resolver().url_patterns:
        if isinstance(p, URLResolver) and str(p.pattern).startswith("admin/"):
            ns = p.namespace or ""
            walk(p.url_patterns, ns, str(p.pattern))
    assert not unnamed, f"admin URLs without a name cannot get a decision: {unnamed}"
    return found


def _resolve_value(value: object, world: dict[str, object]) -> object:
    if isinstance(value, str):
        m = re.fullmatch(r"<contenttype:([\w.]+)>", value)
        if m:
            app_label, model = m.group(1).split(".")
            return ContentType.objects.get(app_label=app_label, model=model).pk
        m = re.fullmatch(r"<([\w.]+)>", value)
        if m:
            return world[m.group(1)].pk
    return value


def _extra_url(name: str, world: dict[str, object]) -> str:
    access = ADMIN_URLS[name]
    if name.startswith("admin:app_list:"):
        url = reverse("admin:app_list", kwargs={"app_label": name.rsplit(":", 1)[1]})
    else:
        url = reverse(name, kwargs={k: _resolve_value(v, world) for k, v in access.kwargs.items()})
    if access.query:
        query = re.sub(r"<[\w.:]+>", lambda m: str(_resolve_value(m.group(0), world)), access.query)
        url = f"{url}?{query}"
    return url


def _action_names(ma: admin.ModelAdmin) -> set[str]:
    names = {name for name, _ in ma.admin_site.actions} if ma.actions is not None else set()
    for action in ma.actions or ():
        names.add(action if isinstance(action, str) else action.__name__)
    return names


def _expected_action(label: str, name: str, who: str) -> bool:
    if who == ANONYMOUS:
        return False
    if name == "delete_selected":
        return _expected_page(label, "delete", who)
    return who in ADMIN_ACTIONS[f"{label}:{name}"]


# --------------------------------------------------------------------------------------------- tests


def test_every_admin_page_and_action_has_a_decision():
    registered = _registered()
    missing_models = sorted(set(registered) - set(MODEL_ACCESS))
    stale_models = sorted(
        label for label, access in MODEL_ACCESS.items() if access.registered and label not in registered
    )
    missing_urls = sorted(set(_extra_admin_urls()) - set(ADMIN_URLS))
    stale_urls = sorted(set(ADMIN_URLS) - set(_extra_admin_urls()))
    missing_actions = sorted(
        f"{label}:{name}"
        for label, ma in registered.items()
        for name in _action_names(ma)
        if name != "delete_selected" and f"{label}:{name}" not in ADMIN_ACTIONS
    )
    assert not missing_models, (
        f"admin models with no decision in recsite/roles.py MODEL_ACCESS: {missing_models}"
    )
    assert not missing_urls, f"admin URLs with no decision in recsite/roles.py ADMIN_URLS: {missing_urls}"
    assert not missing_actions, (
        f"admin actions with no decision in recsite/roles.py ADMIN_ACTIONS: {missing_actions}"
    )
    assert not stale_models, f"MODEL_ACCESS entries that are not registered in the admin: {stale_models}"
    assert not stale_urls, f"ADMIN_URLS entries that match no admin URL: {stale_urls}"


def test_the_migration_created_the_groups_with_the_matrix_permissions():
    for role in ROLES:
        group = Group.objects.get(name=role)
        held = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        }
        assert held == set(role_permissions(role)), role


def test_every_declared_permission_exists():
    assert roles_sync() == {}
    for role in ROLES:
        for full in role_permissions(role):
            app_label, codename = full.split(".", 1)
            assert Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists(), (
                full
            )


def test_roles_sync_is_additive_and_idempotent():
    group = Group.objects.get(name=ROLES[1])
    extra = Permission.objects.get(content_type__app_label="catalog", codename="change_product")
    group.permissions.add(extra)
    roles_sync()
    roles_sync()
    assert group.permissions.filter(pk=extra.pk).exists()
    assert Group.objects.filter(name__in=ROLES).count() == len(ROLES)


def test_role_permissions_rejects_an_unknown_role():
    with pytest.raises(ValueError, match="Unknown role 'Interns'"):
        role_permissions("Interns")


@pytest.mark.parametrize("who", WHO)
def test_admin_pages_and_actions_match_the_matrix(who):
    world = _world()
    user = _user(who)
    client = _client(user)
    mismatches: list[str] = []

    # the standard pages of every registered ModelAdmin
    for label in sorted(_registered()):
        obj = world.get(label)
        for page in PAGES:
            if page not in ("changelist", "add") and obj is None:
                mismatches.append(f"{label} {page}: no fixture row; add one to _world()")
                continue
            url = _model_page_url(label, page, obj)
            got = _allowed(client.get(url))
            want = _expected_page(label, page, who)
            if got != want:
                mismatches.append(f"{label} {page} ({url}): expected {want}, got {got}")

    # every other admin URL
    for name in sorted(_extra_admin_urls()):
        access = ADMIN_URLS[name]
        url = _extra_url(name, world)
        c = _client(user)  # a fresh session: logout must not leak into the next page
        response = c.post(url) if access.method == "POST" else c.get(url)
        got = _allowed(response, not_found_is_forbidden=name.startswith("admin:app_list:"))
        want = who in access.allowed
        if got != want:
            mismatches.append(f"{name} {access.method} {url}: expected {want}, got {got}")

    # every admin action: offered to this user or not (Django's own gate: ModelAdmin.get_actions)
    request = RequestFactory().get("/admin/")
    request.user = user if user is not None else _anonymous()
    for label, ma in sorted(_registered().items()):
        # an action is usable only from the changelist, which needs view (or change) permission
        usable = user is not None and ma.has_view_or_change_permission(request)
        offered = set(ma.get_actions(request)) if usable else set()
        for name in sorted(_action_names(ma)):
            got, want = name in offered, _expected_action(label, name, who)
            if got != want:
                mismatches.append(f"action {label}:{name}: expected {want}, got {got}")

    assert not mismatches, f"{who}: {len(mismatches)} mismatch(es):\n" + "\n".join(mismatches)


def _anonymous():
    from django.contrib.auth.models import AnonymousUser

    return AnonymousUser()
